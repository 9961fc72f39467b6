"""The napari dock widgets: the only part of the package that imports Qt, magicgui or napari."""

from .compare_widget import CompareWidget
from .correct_widget import CorrectWidget
from .finetune_widget import FinetuneWidget
from .images_widget import ImagesWidget
from .model_widget import ModelWidget
from .panel import AttnSegPanel
from .segment_widget import SegmentWidget

__all__ = ["AttnSegPanel", "CompareWidget", "CorrectWidget", "FinetuneWidget", "ImagesWidget", "ModelWidget",
           "SegmentWidget"]
