"""The walk task: velocity tracking on flat ground."""
