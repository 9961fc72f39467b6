"""Images with known labels: the synthetic nuclei generator and the real nuclei of the DSB 2018 folder.

Imported lazily: nothing here imports torch until a module of it is used.
"""
