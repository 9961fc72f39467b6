"""Fine-tuning: training targets and augmentation, training and validation sets, the training loop.

Imported lazily: nothing here imports torch until a module of it is used.
"""
