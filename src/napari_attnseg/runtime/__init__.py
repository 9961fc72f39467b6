"""Where and how the engine runs: devices and precision, memory planning, CPU threads, malloc settings.

Imported lazily: nothing here imports torch until a module of it is used.
"""
