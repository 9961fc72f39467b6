"""Annotation projects on disk, the rescue of unsaved edits, instance-mask edits, model comparison.

Imported lazily: nothing here imports torch until a module of it is used.
"""
