"""Terrain geometry: obstacle tracks and depth images by ray casting."""
