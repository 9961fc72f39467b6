"""`python -m napari_attnseg`: open napari with the plugin's widgets and its sample data."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m napari_attnseg", description=__doc__)
    parser.add_argument("--screenshot", type=Path, default=None,
                        help="save a screenshot of the window to this PNG and quit")
    args = parser.parse_args(argv)

    import napari

    viewer = napari.Viewer(title="napari-attnseg")
    viewer.open_sample("napari-attnseg", "nuclei")
    docks = {}
    for name in ("AttnSeg: Images", "AttnSeg: Segment", "AttnSeg: Correct", "AttnSeg: Fine-tune",
                 "AttnSeg: Compare", "AttnSeg: Model"):
        docks[name], _widget = viewer.window.add_plugin_dock_widget("napari-attnseg", name,
                                                                    tabify=name != "AttnSeg: Images")
    docks["AttnSeg: Segment"].raise_()  # the tab to start with; the last one added would be on top
    if args.screenshot is not None:
        from qtpy.QtWidgets import QApplication

        args.screenshot.parent.mkdir(parents=True, exist_ok=True)
        QApplication.processEvents()
        viewer.screenshot(str(args.screenshot), canvas_only=False)
        viewer.close()
        print(f"saved {args.screenshot}")
        return 0
    napari.run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
