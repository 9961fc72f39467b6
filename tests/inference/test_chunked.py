import numpy as np
import pytest

import napari_attnseg as nas
from napari_attnseg.errors import InputError

pytest.importorskip("dask.array", reason="chunked segmentation needs dask")
from napari_attnseg.inference.chunked import segment_dask, segment_zarr  # noqa: E402


@pytest.fixture(scope="module")
def model():
    return nas.load_model()


@pytest.fixture(scope="module")
def large_image():
    image, _ = nas.synthetic_nuclei((480, 700), seed=8, radius_range=(7.0, 10.0))
    return image


@pytest.fixture(scope="module")
def chunked_labels(model, large_image):
    return segment_dask(large_image, model, chunk=256, halo=48).compute(scheduler="threads")


def test_chunked_labels_agree_with_whole_image_segmentation(model, large_image, chunked_labels):
    whole = nas.segment(large_image, model)
    assert chunked_labels.dtype == np.int32 and chunked_labels.shape == large_image.shape
    scores = nas.evaluate(chunked_labels, whole)
    assert scores["ap50"] > 0.97, scores
    assert abs(scores["n_pred"] - scores["n_true"]) <= 0.02 * scores["n_true"]


def test_ids_are_unique_and_consecutive(chunked_labels):
    ids = np.unique(chunked_labels)
    np.testing.assert_array_equal(ids, np.arange(ids.size))


def test_objects_on_chunk_borders_are_joined(model, large_image, chunked_labels):
    # Along the chunk border at column 256, pixels that are foreground on both sides belong to one
    # object as often as they do when the image is segmented whole; without joining, never.
    def same_object_share(labels):
        left, right = labels[:, 255], labels[:, 256]
        crossing = (left > 0) & (right > 0)
        return crossing.sum(), float(np.mean(left[crossing] == right[crossing]))

    crossing, chunked_share = same_object_share(chunked_labels)
    _, whole_share = same_object_share(nas.segment(large_image, model))
    assert crossing > 20
    assert chunked_share > 0.8 and abs(chunked_share - whole_share) < 0.1


def test_local_cluster_gives_the_same_labels(model, large_image, chunked_labels):
    distributed = pytest.importorskip("distributed", reason="needs dask.distributed")
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  dashboard_address=None) as cluster, distributed.Client(cluster):
        on_cluster = segment_dask(large_image, model, chunk=256, halo=48).compute()
    np.testing.assert_array_equal(on_cluster, chunked_labels)


def test_zarr_in_zarr_out(model, large_image, chunked_labels, tmp_path):
    zarr = pytest.importorskip("zarr", reason="needs zarr")
    source = zarr.open_array(str(tmp_path / "image.zarr"), mode="w", shape=large_image.shape,
                             chunks=(256, 256), dtype=large_image.dtype)
    source[:] = large_image
    segment_zarr(str(tmp_path / "image.zarr"), str(tmp_path / "labels.zarr"), model, chunk=256, halo=48)
    written = zarr.open_array(str(tmp_path / "labels.zarr"), mode="r")[:]
    np.testing.assert_array_equal(written, chunked_labels)


def test_bad_chunking_is_explained(model):
    with pytest.raises(InputError, match="2D"):
        segment_dask(np.zeros((3, 64, 64)), model)
    with pytest.raises(InputError, match="halo"):
        segment_dask(np.zeros((512, 512)), model, chunk=256, halo=200)


def test_cli_segment_zarr(large_image, chunked_labels, tmp_path, capsys):
    zarr = pytest.importorskip("zarr", reason="needs zarr")
    from napari_attnseg.cli import main

    source = zarr.open_array(str(tmp_path / "in.zarr"), mode="w", shape=large_image.shape,
                             chunks=(256, 256), dtype=large_image.dtype)
    source[:] = large_image
    args = ["segment-zarr", str(tmp_path / "in.zarr"), "-o", str(tmp_path / "out.zarr"),
            "--chunk", "256", "--halo", "48"]
    assert main(args) == 0
    np.testing.assert_array_equal(zarr.open_array(str(tmp_path / "out.zarr"), mode="r")[:], chunked_labels)
    assert main(args) == 2 and "exists" in capsys.readouterr().err


def test_thin_and_ragged_images(model):
    thin, _ = nas.synthetic_nuclei((40, 600), seed=2, radius_range=(6.0, 8.0))
    labels = segment_dask(thin, model, chunk=256, halo=32).compute(scheduler="threads")
    assert labels.shape == thin.shape and labels.max() > 0
    ragged, _ = nas.synthetic_nuclei((300, 530), seed=4, radius_range=(6.0, 8.0))  # last chunks thin
    labels = segment_dask(ragged, model, chunk=256, halo=48).compute(scheduler="threads")
    assert nas.evaluate(labels, nas.segment(ragged, model))["ap50"] > 0.9


def test_stepwise_driver_gives_the_same_labels_with_progress(model, large_image, chunked_labels, tmp_path):
    import zarr

    from napari_attnseg.inference.chunked import segment_large_steps
    from napari_attnseg.inference.predict import drain

    reports = []
    steps = segment_large_steps(large_image, model, chunk=256, halo=48, labels_path=str(tmp_path / "l.zarr"))
    result = drain(steps, reports.append)
    np.testing.assert_array_equal(result.labels[...], chunked_labels)
    np.testing.assert_array_equal(zarr.open_array(str(tmp_path / "l.zarr"), mode="r")[...], chunked_labels)
    assert result.n_objects == chunked_labels.max() and result.path == str(tmp_path / "l.zarr")
    fractions = [report.fraction for report in reports]
    assert fractions == sorted(fractions) and fractions[-1] == 1.0
    stages = [report.stage for report in reports]
    assert stages[0] == "reading" and stages.index("joining") > stages.index("segmenting")
    assert stages[-1] == "writing"
    segmenting = [report for report in reports if report.stage == "segmenting"]
    # At least one report per batch of tiles in each of the 2 x 3 chunks: Stop never waits long.
    assert {report.done for report in segmenting} == set(range(6))
    assert all(0 < report.tiles_done <= report.tiles_total for report in segmenting)
    with pytest.raises(InputError, match="exists"):
        next(segment_large_steps(large_image, model, labels_path=str(tmp_path / "l.zarr")))


def test_stopping_the_stepwise_driver_removes_its_scratch_chunks(model, large_image, tmp_path, monkeypatch):
    import tempfile

    from napari_attnseg.inference.chunked import segment_large_steps

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    steps = segment_large_steps(large_image, model, chunk=256, halo=48)
    assert next(steps).stage == "reading" and next(steps).stage == "segmenting"
    assert any(path.name.startswith("attnseg-chunks-") for path in tmp_path.iterdir())
    steps.close()  # what worker.quit() amounts to: the generator is not advanced again
    assert not any(path.name.startswith("attnseg-chunks-") for path in tmp_path.iterdir())


def test_which_layers_need_the_chunked_path():
    import dask.array as da

    from napari_attnseg.inference.chunked import needs_chunked

    small = np.zeros((64, 80), np.uint16)
    assert not needs_chunked(small)
    assert needs_chunked(small, max_pixels=64 * 79)
    assert needs_chunked(da.from_array(small))  # not in memory: never load it whole
    assert needs_chunked([da.from_array(small), da.from_array(small[::2, ::2])])  # a pyramid
    assert not needs_chunked(da.zeros((5, 64, 80)))  # a stack goes the plane-by-plane path
    assert needs_chunked(da.zeros((64, 80, 3)), channel_axis=-1)
    assert not needs_chunked(np.zeros((64, 80, 3)), channel_axis=-1)
