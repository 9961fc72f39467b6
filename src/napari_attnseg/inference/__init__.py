"""From an image to instance labels: input checks and normalisation, tiling, prediction generators,
post-processing, uncertainty, chunked/dask segmentation of large images, folders of files.

Imported lazily: nothing here imports torch until a module of it is used.
"""
