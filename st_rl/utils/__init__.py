"""Utilities: strict config resolution, observation segments, checkpoints, export (TorchScript and ONNX).

Nothing is imported here, so a torch-free module of this package (``st_rl.utils.onnx_policy``) loads without torch.
"""
