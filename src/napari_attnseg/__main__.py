"""`python -m napari_attnseg`: open napari with the AttnSeg dock and its sample data."""

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
    # one dock with tabs Images / Segment / Correct / Fine-tune / Compare / Model, through napari's
    # plugin manager as the Plugins menu opens it (the widgets get a proxy of the viewer)
    viewer.window.add_plugin_dock_widget("napari-attnseg", "AttnSeg")
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
