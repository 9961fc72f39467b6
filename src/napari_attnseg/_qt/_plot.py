"""A small live line plot (QPainter only: napari ships no plotting library)."""

from __future__ import annotations

import math

from qtpy.QtCore import QPointF
from qtpy.QtGui import QColor, QPainter, QPen
from qtpy.QtWidgets import QSizePolicy, QWidget


class LivePlot(QWidget):
    """Training loss (left axis, per batch) and validation score (right axis, 0-1, per epoch)."""

    LOSS_COLOUR = QColor(90, 160, 255)
    SCORE_COLOUR = QColor(255, 170, 60)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setMinimumHeight(140)
        self.setSizePolicy(QSizePolicy.Expanding, QSizePolicy.Preferred)
        self.loss: list[tuple[float, float]] = []
        self.score: list[tuple[float, float]] = []
        self.score_name = "val AP50"

    def clear(self) -> None:
        self.loss.clear()
        self.score.clear()
        self.update()

    def add_loss(self, step: float, value: float) -> None:
        if math.isfinite(value):
            self.loss.append((step, value))

    def add_score(self, step: float, value: float) -> None:
        if math.isfinite(value):
            self.score.append((step, value))

    def paintEvent(self, _event) -> None:  # noqa: N802 (Qt naming)
        painter = QPainter(self)
        painter.setRenderHint(QPainter.Antialiasing)
        width, height = self.width(), self.height()
        left, right, top, bottom = 36, 36, 8, 18
        plot_w, plot_h = max(width - left - right, 1), max(height - top - bottom, 1)
        painter.setPen(QPen(QColor(120, 120, 120)))
        painter.drawRect(left, top, plot_w, plot_h)
        steps = [s for s, _ in self.loss] + [s for s, _ in self.score]
        if not steps:
            painter.drawText(left + 6, top + 16, "loss and validation score appear here")
            return
        last_step = max(max(steps), 1.0)
        max_loss = max((v for _, v in self.loss), default=1.0) or 1.0

        def draw(series, scale_max, colour):
            if len(series) < 1:
                return
            painter.setPen(QPen(colour, 2))
            points = [QPointF(left + plot_w * s / last_step, top + plot_h * (1 - min(v / scale_max, 1.0)))
                      for s, v in series]
            for a, b in zip(points[:-1], points[1:]):
                painter.drawLine(a, b)
            painter.drawEllipse(points[-1], 2.5, 2.5)

        draw(self.loss, max_loss, self.LOSS_COLOUR)
        draw(self.score, 1.0, self.SCORE_COLOUR)
        painter.setPen(self.LOSS_COLOUR)
        painter.drawText(2, top + 10, f"{max_loss:.2g}")
        painter.drawText(2, height - 4, "loss")
        painter.setPen(self.SCORE_COLOUR)
        painter.drawText(width - right + 4, top + 10, "1.0")
        painter.drawText(width - right - 60, height - 4, self.score_name)
        painter.setPen(QColor(160, 160, 160))
        painter.drawText(left + plot_w // 2 - 20, height - 4, f"step {int(last_step)}")
        painter.end()


__all__ = ["LivePlot"]
