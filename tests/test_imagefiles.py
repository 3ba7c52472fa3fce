"""-cbffile, -nexusfile, -pngfile and the progress bar, checked with the readers users have (fabio, pyFAI, h5py)."""
import io
import math
import os

import numpy as np
import pytest

from arraybragg import cli
from arraybragg.outputs import imagefiles
from arraybragg.render import progress
from arraybragg.errors import InputError

fabio = pytest.importorskip("fabio")
h5py = pytest.importorskip("h5py")

HKL = "".join(f"{h} {k} {l} {10 + (h * 7 + k * 3 + l) % 13}\n"
              for h in range(-6, 7) for k in range(-6, 7) for l in range(-6, 7))
# Pilatus 6M size; only a small region is rendered to stay fast
PILATUS = ["-detpixels_x", "2463", "-detpixels_y", "2527", "-pixel", "0.172", "-distance", "200",
           "-roi", "1180", "1299", "1200", "1329"]
COMMON = ["-cell", "50", "60", "70", "90", "90", "90", "-N", "3", "-lambda", "1.0", "-oversample", "1",
          "-phi", "10", "-osc", "0.5", "-seed", "5", "-nopgm", "-noprogress"]


@pytest.fixture(scope="module")
def rendered(tmp_path_factory):
    """One Pilatus-size render written as SMV, CBF, NeXus (with int and noise) and PNG."""
    work = tmp_path_factory.mktemp("imagefiles")
    (work / "P1.hkl").write_text(HKL)
    names = {kind: str(work / f"image.{kind}") for kind in ("img", "cbf", "nxs", "png", "noise", "bin")}
    argv = ["-hkl", str(work / "P1.hkl"), *PILATUS, *COMMON, "-intfile", names["img"], "-cbffile", names["cbf"],
            "-nexusfile", names["nxs"], "--nexus-int", "-pngfile", names["png"], "-noisefile", names["noise"],
            "-floatfile", names["bin"]]
    out, err = io.StringIO(), io.StringIO()
    cwd = os.getcwd()
    os.chdir(work)
    try:
        assert cli.run(argv, out=out, err=err) == 0
    finally:
        os.chdir(cwd)
    assert err.getvalue() == ""  # not a terminal: no progress bar
    names["float"] = np.fromfile(names["bin"], dtype=np.float32).reshape(2527, 2463)
    names["log"] = out.getvalue()
    return names


def test_fabio_reads_pilatus_size_smv_and_cbf_with_the_same_pixels(rendered):
    smv, cbf = fabio.open(rendered["img"]), fabio.open(rendered["cbf"])
    assert smv.data.shape == cbf.data.shape == (2527, 2463)
    assert np.array_equal(smv.data.astype(np.int64), cbf.data.astype(np.int64))
    assert cbf.data.dtype == np.int32 and cbf.header["conversions"] == "x-CBF_BYTE_OFFSET"
    spots = cbf.data[1200:1330, 1180:1300]
    assert spots.max() == 55040 and spots.min() == 40  # autoscaled peak + adc 40 inside the ROI
    assert not cbf.data[:1200].any()  # outside the ROI: 0


def test_cbf_pilatus_header_carries_the_geometry(rendered):
    header = fabio.open(rendered["cbf"]).pilatus_headers
    assert header["Pixel_size"] == (0.000172, 0.000172)
    assert header["Detector_distance"] == pytest.approx(0.2)
    assert header["Wavelength"] == pytest.approx(1.0)
    assert header["Beam_xy"] == pytest.approx((1232.5, 1264.5))  # MOSFLM default centre + half a pixel
    assert header["Start_angle"] == pytest.approx(10.0) and header["Angle_increment"] == pytest.approx(0.5)
    assert header["Exposure_time"] == pytest.approx(1.0)


def test_pyfai_profile_of_cbf_equals_profile_of_smv(rendered):
    pyFAI = pytest.importorskip("pyFAI")
    from pyFAI.integrator.azimuthal import AzimuthalIntegrator

    smv, cbf = fabio.open(rendered["img"]), fabio.open(rendered["cbf"])
    h, p = smv.header, cbf.pilatus_headers
    mm = 1e-3
    from_smv = AzimuthalIntegrator(dist=float(h["DISTANCE"]) * mm, poni1=float(h["DENZO_X_BEAM"]) * mm,
                                   poni2=float(h["DENZO_Y_BEAM"]) * mm, pixel1=float(h["PIXEL_SIZE"]) * mm,
                                   pixel2=float(h["PIXEL_SIZE"]) * mm, wavelength=float(h["WAVELENGTH"]) * 1e-10)
    px_s, px_f = p["Pixel_size"][1], p["Pixel_size"][0]
    from_cbf = AzimuthalIntegrator(dist=p["Detector_distance"], poni1=p["Beam_xy"][1] * px_s,
                                   poni2=p["Beam_xy"][0] * px_f, pixel1=px_s, pixel2=px_f,
                                   wavelength=p["Wavelength"] * 1e-10)
    kwargs = dict(npt=200, unit="q_nm^-1", radial_range=(0.5, 15.0), method=("no", "histogram", "cython"),
                  correctSolidAngle=False)
    a = from_smv.integrate1d(smv.data.astype(np.float64), **kwargs)
    b = from_cbf.integrate1d(cbf.data.astype(np.float64), **kwargs)
    assert np.array_equal(a.radial, b.radial)
    assert a.intensity.max() > 100.0  # the profile has Bragg rings, not just the ADC offset
    np.testing.assert_allclose(b.intensity, a.intensity, rtol=1e-9, atol=1e-9)


# Every field the NXmx test checks: (path, NX_class or None for a dataset)
NXMX_REQUIRED = [
    ("entry", "NXentry"), ("entry/definition", None), ("entry/start_time", None),
    ("entry/data", "NXdata"), ("entry/data/data", None),
    ("entry/instrument", "NXinstrument"), ("entry/instrument/beam", "NXbeam"),
    ("entry/instrument/beam/incident_wavelength", None),
    ("entry/instrument/detector", "NXdetector"), ("entry/instrument/detector/depends_on", None),
    ("entry/instrument/detector/transformations", "NXtransformations"),
    ("entry/instrument/detector/transformations/origin", None),
    ("entry/instrument/detector/frame_time", None), ("entry/instrument/detector/saturation_value", None),
    ("entry/instrument/detector/x_pixel_size", None), ("entry/instrument/detector/y_pixel_size", None),
    ("entry/instrument/detector/sensor_material", None), ("entry/instrument/detector/sensor_thickness", None),
    ("entry/instrument/detector/module", "NXdetector_module"),
    ("entry/instrument/detector/module/data_origin", None), ("entry/instrument/detector/module/data_size", None),
    ("entry/instrument/detector/module/module_offset", None),
    ("entry/instrument/detector/module/fast_pixel_direction", None),
    ("entry/instrument/detector/module/slow_pixel_direction", None),
    ("entry/sample", "NXsample"), ("entry/sample/depends_on", None),
    ("entry/sample/transformations", "NXtransformations"), ("entry/sample/transformations/phi", None),
]


def _text(value):
    return value.decode() if isinstance(value, bytes) else str(value)


def _chain_position(h5, path, point):
    """Follow a depends_on chain from dataset ``path``, applying each translation/rotation to ``point``."""
    while path != ".":
        ds = h5[path]
        vector, offset = np.asarray(ds.attrs["vector"], float), np.asarray(ds.attrs["offset"], float)
        value = float(np.ravel(ds[()])[0])
        kind = _text(ds.attrs["transformation_type"])
        if kind == "translation":
            point = point + value * vector + offset
        else:
            angle = math.radians(value)
            point = (point * math.cos(angle) + np.cross(vector, point) * math.sin(angle)
                     + vector * (vector @ point) * (1 - math.cos(angle))) + offset
        path = _text(ds.attrs["depends_on"])
    return point


def test_nexus_file_has_every_nxmx_field_and_the_images(rendered):
    with h5py.File(rendered["nxs"], "r") as h5:
        for path, nx_class in NXMX_REQUIRED:
            assert path in h5, path
            if nx_class is not None:
                assert _text(h5[path].attrs["NX_class"]) == nx_class, path
        assert _text(h5["entry/definition"][()]) == "NXmx"
        assert h5["entry/instrument/beam/incident_wavelength"][()] == pytest.approx(1.0)
        assert _text(h5["entry/instrument/beam/incident_wavelength"].attrs["units"]) == "angstrom"
        data = h5["entry/data/data"]
        assert data.shape == (1, 2527, 2463) and data.dtype == np.float32
        filters = data.id.get_create_plist()
        assert [filters.get_filter(i)[0] for i in range(filters.get_nfilters())] == [32008]  # Bitshuffle/LZ4
        assert np.array_equal(data[0], rendered["float"])
        assert np.array_equal(h5["entry/data/data_int"][0], fabio.open(rendered["img"]).data)
        assert np.array_equal(h5["entry/data/data_noise"][0], fabio.open(rendered["noise"]).data)
        assert list(h5["entry/instrument/detector/module/data_size"][()]) == [2527, 2463]
        phi = h5["entry/sample/transformations/phi"]
        assert phi[0] == pytest.approx(10.0) and _text(phi.attrs["transformation_type"]) == "rotation"
        assert h5["entry/sample/transformations/phi_increment_set"][0] == pytest.approx(0.5)


def test_nexus_geometry_puts_the_beam_centre_where_the_cbf_says(rendered):
    """The NXmx chains place the detector so the beam (McStas +z) hits the CBF's Beam_xy pixel position."""
    beam_xy = fabio.open(rendered["cbf"]).pilatus_headers["Beam_xy"]
    with h5py.File(rendered["nxs"], "r") as h5:
        module = "entry/instrument/detector/module/"
        origin = _chain_position(h5, _text(h5[module + "fast_pixel_direction"].attrs["depends_on"]), np.zeros(3))
        fast = np.asarray(h5[module + "fast_pixel_direction"].attrs["vector"])
        slow = np.asarray(h5[module + "slow_pixel_direction"].attrs["vector"])
        pixel = float(h5[module + "fast_pixel_direction"][0])
    normal = np.cross(fast, slow)
    hit = (origin @ normal) / normal[2] * np.array([0.0, 0.0, 1.0])  # beam line z-axis meets the plane
    in_plane = hit - origin
    assert (in_plane @ fast / pixel, in_plane @ slow / pixel) == pytest.approx(beam_xy, abs=1e-6)
    assert hit[2] == pytest.approx(0.2)  # the distance


@pytest.mark.parametrize("convention", [[], ["-xds"], ["-dials"], ["-adxv"], ["-mosflm", "-twotheta", "20"]])
def test_nexus_chains_match_the_detector_in_every_convention(tmp_path, convention):
    sim = _small_sim(tmp_path, ["-distance", "120", "-Xbeam", "0.3", "-Ybeam", "0.5", *convention])
    rotation = imagefiles.lab_to_mcstas(sim)
    assert np.allclose(rotation @ rotation.T, np.eye(3)) and np.linalg.det(rotation) == pytest.approx(1.0)
    assert np.allclose(rotation @ sim.beam.beam_vector, [0.0, 0.0, 1.0])
    imagefiles.write_nexus(tmp_path / "x.nxs", np.zeros(sim.detector.shape), sim)
    d = sim.detector
    with h5py.File(tmp_path / "x.nxs", "r") as h5:
        module = "entry/instrument/detector/module/"
        origin = _chain_position(h5, "entry/instrument/detector/module/module_offset", np.zeros(3))
        fast = np.asarray(h5[module + "fast_pixel_direction"].attrs["vector"])
        slow = np.asarray(h5[module + "slow_pixel_direction"].attrs["vector"])
        spindle = np.asarray(h5["entry/sample/transformations/phi"].attrs["vector"])
    # pixel (f, s) corner at origin + f fast + s slow, as the lab vectors say
    assert np.allclose(origin, rotation @ d.pix0) and np.allclose(fast, rotation @ d.fdet)
    assert np.allclose(slow, rotation @ d.sdet) and np.allclose(spindle, rotation @ sim.goniometer.spindle)
    normal = np.cross(fast, slow)
    hit = (origin @ normal) / normal[2] * np.array([0.0, 0.0, 1.0])
    along = ((hit - origin) @ fast, (hit - origin) @ slow)
    with h5py.File(tmp_path / "x.nxs", "r") as h5:
        recorded = [h5["entry/instrument/detector/beam_center_" + axis][()] * d.pixel_size for axis in "xy"]
    assert along == pytest.approx(recorded, abs=1e-12)
    if d.twotheta == 0.0:  # untilted: where nanoBragg says the beam is, at -distance
        assert along == pytest.approx((d.Fbeam, d.Sbeam), abs=1e-12)
        assert hit[2] == pytest.approx(d.distance)
    else:  # the beam meets the tilted plane where -Xbeam/-Ybeam put it (MOSFLM: +half a pixel, swapped)
        assert along == pytest.approx((0.5e-3 + 0.05e-3, 0.3e-3 + 0.05e-3), abs=1e-12)


def test_png_preview_is_a_colour_image_of_the_render(rendered):
    from PIL import Image

    with Image.open(rendered["png"]) as png:
        assert png.format == "PNG" and png.size == (2463, 2527)
        rgb = np.asarray(png.convert("RGB"))
    brightest = np.unravel_index(np.argmax(rendered["float"]), rendered["float"].shape)
    assert rgb[brightest].sum() > rgb[0, 0].sum()  # a spot is brighter than the unrendered corner
    spots = rgb[1200:1330, 1180:1300].astype(np.int64)
    colours = np.unique(spots[..., 0] << 16 | spots[..., 1] << 8 | spots[..., 2])
    assert len(colours) > 20  # a colour map, not a threshold


def test_png_unknown_colour_map_fails_cleanly_and_writes_nothing(tmp_path):
    target = tmp_path / "x.png"
    with pytest.raises(InputError, match="--png-cmap"):
        imagefiles.write_png(target, np.ones((4, 4)), "log", "no_such_map")
    assert not list(tmp_path.iterdir())


def test_cli_bad_colour_map_fails_before_rendering(tmp_path, capsys):
    cwd = os.getcwd()
    os.chdir(tmp_path)
    try:
        assert cli.main(["-pngfile", "x.png", "--png-cmap", "rainbowish", "-default_F", "1", "-cell", "9", "9", "9",
                         "90", "90", "90"]) == 2
    finally:
        os.chdir(cwd)
    assert capsys.readouterr().err.startswith("arraybragg: error: --png-cmap: unknown colour map 'rainbowish'")
    assert not list(tmp_path.iterdir())


def test_failed_nexus_write_leaves_no_file(tmp_path, rendered, monkeypatch):
    def broken(*args, **kwargs):
        raise OSError("disk full")
    monkeypatch.setattr(imagefiles, "_nexus_sample", broken)
    sim = _small_sim(tmp_path)
    with pytest.raises(OSError):
        imagefiles.write_nexus(tmp_path / "x.nxs", np.zeros(sim.detector.shape), sim)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["P1.hkl"]


def _small_sim(tmp_path, extra=()):
    from arraybragg.io import flags
    from arraybragg.models.nanobragg import build_simulation

    (tmp_path / "P1.hkl").write_text("1 2 3 10\n")
    settings = flags.parse_args(["-hkl", str(tmp_path / "P1.hkl"), "-cell", "50", "50", "50", "90", "90", "90",
                                 "-detpixels", "8", "-dump", os.devnull, *extra])
    return build_simulation(settings, log=lambda line="": None, workdir=str(tmp_path))


class _Terminal(io.StringIO):
    def isatty(self):
        return True


def test_progress_bar_shows_rate_and_time_left():
    stream = _Terminal()
    show = progress.terminal_progress(stream, delay_s=0.0, refresh_s=0.0)
    for done in (1000, 500_000, 1_000_000):
        show(done, 1_000_000)
    text = stream.getvalue()
    assert "rendering" in text and "px/s" in text and "1.00M/1.00M" in text
    assert "<" in text  # elapsed<remaining


def test_progress_bar_stays_silent_for_short_renders():
    stream = _Terminal()
    show = progress.terminal_progress(stream, delay_s=60.0)
    show(10, 100)
    show(100, 100)
    assert stream.getvalue() == ""


@pytest.mark.parametrize("flag", [[], ["-noprogress"]])
def test_cli_draws_the_bar_on_a_terminal_unless_noprogress(tmp_path, monkeypatch, flag):
    real = progress.terminal_progress
    monkeypatch.setattr(progress, "terminal_progress", lambda stream: real(stream, delay_s=0.0, refresh_s=0.0))
    err = _Terminal()
    cwd = os.getcwd()
    os.chdir(tmp_path)
    try:
        argv = ["-default_F", "1", "-cell", "20", "20", "20", "90", "90", "90", "-detpixels", "64", "-nonoise",
                "-nopgm", "--tile-pixels", "512", *flag]
        assert cli.run(argv, out=io.StringIO(), err=err) == 0
    finally:
        os.chdir(cwd)
    if flag:
        assert err.getvalue() == ""
    else:
        assert "rendering" in err.getvalue() and "px/s" in err.getvalue() and "4.10k/4.10k" in err.getvalue()
