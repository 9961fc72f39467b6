"""Everything on disk: model files and their cards, exports (ONNX, TorchScript, bioimage.io) and their
import, image and OME-Zarr reading and writing, atomic writes.

Imported lazily: nothing here imports torch until a module of it is used.
"""
