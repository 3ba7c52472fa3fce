"""SMV files (arraybragg.io.smv): headers byte-identical to the C, reading as GetFrame, ValueOf quirks."""
import math
import sys

import numpy as np
import pytest

from conftest import NO_REFERENCE, REFERENCE, Case

from arraybragg.io import smv
from arraybragg.errors import InputError

needs_corpus = pytest.mark.skipif(REFERENCE is None, reason=NO_REFERENCE)

FIELD_KEYS = {  # SMVHeader field -> header key
    "pixel_size_mm": "PIXEL_SIZE", "distance_mm": "DISTANCE", "wavelength_A": "WAVELENGTH",
    "beam_center_x_mm": "BEAM_CENTER_X", "beam_center_y_mm": "BEAM_CENTER_Y",
    "adxv_center_x_mm": "ADXV_CENTER_X", "adxv_center_y_mm": "ADXV_CENTER_Y",
    "mosflm_center_x_mm": "MOSFLM_CENTER_X", "mosflm_center_y_mm": "MOSFLM_CENTER_Y",
    "denzo_x_beam_mm": "DENZO_X_BEAM", "denzo_y_beam_mm": "DENZO_Y_BEAM",
    "xds_orgx": "XDS_ORGX", "xds_orgy": "XDS_ORGY", "close_distance_mm": "CLOSE_DISTANCE",
    "phi_deg": "PHI", "osc_start_deg": "OSC_START", "osc_range_deg": "OSC_RANGE", "twotheta_deg": "TWOTHETA",
}


def header_fields(text: str) -> smv.SMVHeader:
    """SMVHeader from the KEY=value lines of a header."""
    lines = dict(line.rstrip(";").split("=", 1) for line in text.splitlines() if "=" in line)
    return smv.SMVHeader(
        fpixels=int(lines["SIZE1"]), spixels=int(lines["SIZE2"]),
        dials_origin_mm=tuple(float(v) for v in lines["DIALS_ORIGIN"].split(",")),
        **{field: float(lines[key]) for field, key in FIELD_KEYS.items()})


def example_header(**changes) -> smv.SMVHeader:
    values = dict(fpixels=4, spixels=3, pixel_size_mm=0.1, distance_mm=100.0, wavelength_A=1.0,
                  beam_center_x_mm=0.2, beam_center_y_mm=0.15, adxv_center_x_mm=0.2, adxv_center_y_mm=0.15,
                  mosflm_center_x_mm=0.1, mosflm_center_y_mm=0.15, denzo_x_beam_mm=0.15, denzo_y_beam_mm=0.2,
                  dials_origin_mm=(-0.2, 0.15, -100.0), xds_orgx=2.0, xds_orgy=1.5, close_distance_mm=100.0,
                  phi_deg=0.0, osc_start_deg=0.0, osc_range_deg=0.1, twotheta_deg=0.0)
    values.update(changes)
    return smv.SMVHeader(**values)


@needs_corpus
@pytest.mark.parametrize("name", ["geo_mosflm_default", "geo_rot_twotheta_beam", "geo_nonsquare", "samp_phi_osc"])
def test_header_bytes_identical_to_c(name, tmp_path):
    c = Case(REFERENCE / "cases" / name)
    raw = c.read_bytes("int.img.gz")
    fields = header_fields(raw[:512].decode("ascii"))
    assert smv.format_smv_header(fields) == raw[:512]
    pixels = np.frombuffer(raw[512:], dtype="<u2").reshape(c.shape)
    smv.write_smv(tmp_path / "int.img", pixels, fields)
    assert (tmp_path / "int.img").read_bytes() == raw


def test_header_layout():
    header = smv.format_smv_header(example_header(phi_deg=12.5, dials_origin_mm=(-6.5, 6.5, -100.0)))
    assert len(header) == 512
    text = header.decode("ascii")
    assert text.startswith(f"{{\nHEADER_BYTES=512;\nDIM=2;\nBYTE_ORDER={sys.byteorder}_endian;\n"
                           "TYPE=unsigned_short;\nSIZE1=4;\nSIZE2=3;\nPIXEL_SIZE=0.1;\nDISTANCE=100;\n")
    assert "\nDIALS_ORIGIN=-6.5,6.5,-100\nXDS_ORGX=2;\n" in text
    assert "\nPHI=12.5;\nOSC_START=0;\nOSC_RANGE=0.1;\n" in text
    assert text.rstrip(" ").endswith("DETECTOR_SN=000;\nBEAMLINE=fake;\n}\f")


def _overlong_fields():
    # %g values of a large detector push the header text past 512 bytes
    long_value = -123.457e-10
    return example_header(**{field: long_value for field in FIELD_KEYS}, dials_origin_mm=(long_value,) * 3)


def test_overlong_header_is_left_unpadded_in_c_parity():
    # the C writes the text whole, still declaring 512 bytes, and the pixels follow it directly
    header = smv.format_smv_header(_overlong_fields(), c_parity=True)
    assert len(header) > 512 and header.endswith(b"BEAMLINE=fake;\n}\f")
    assert header.startswith(b"{\nHEADER_BYTES=512;\n")


def test_overlong_header_declares_and_fills_the_next_multiple_of_512():
    header = smv.format_smv_header(_overlong_fields())
    c_header = smv.format_smv_header(_overlong_fields(), c_parity=True)
    assert len(header) == 1024 and header.startswith(b"{\nHEADER_BYTES=1024;\n")
    # keys, values and order as the C's; only the declared size and the padding differ
    assert header.rstrip(b" ") == c_header.replace(b"HEADER_BYTES=512;", b"HEADER_BYTES=1024;")


@pytest.mark.parametrize("c_parity", [False, True])
def test_overlong_headers_read_back(tmp_path, c_parity):
    data = np.arange(12, dtype=np.uint16).reshape(3, 4) * 977
    path = tmp_path / "long.img"
    smv.write_smv(path, data, _overlong_fields(), c_parity=c_parity)
    image = smv.read_smv(path)
    assert np.array_equal(image.data, data)
    assert smv.header_value(image.header, "BEAMLINE") == 0.0 and "BEAMLINE=fake;" in image.header
    assert path.stat().st_size == (len(smv.format_smv_header(_overlong_fields(), True)) if c_parity else 1024) + 24


def test_fabio_reads_a_padded_long_header(tmp_path):
    fabio = pytest.importorskip("fabio")
    data = np.arange(12, dtype=np.uint16).reshape(3, 4) * 1000 + 7
    path = tmp_path / "long.img"
    smv.write_smv(path, data, _overlong_fields())
    image = fabio.open(str(path))
    assert np.array_equal(image.data, data) and image.header["HEADER_BYTES"] == "1024"


def test_round_trip(tmp_path):
    data = (np.arange(12, dtype=np.uint16).reshape(3, 4) * 5000)
    fields = example_header(distance_mm=123.4, wavelength_A=0.9768, twotheta_deg=-15.0)
    path = tmp_path / "a.img"
    smv.write_smv(path, data, fields)
    image = smv.read_smv(path)
    assert (image.width, image.height) == (4, 3)
    assert image.data.dtype == np.uint16 and np.array_equal(image.data, data)
    assert smv.header_value(image.header, "WAVELENGTH") == 0.9768
    assert smv.header_value(image.header, "TWOTHETA") == -15.0
    assert smv.header_value(image.header, "CLOSE_DISTANCE") == 100.0
    with pytest.raises(ValueError):
        smv.write_smv(path, data.T, fields)


def test_fabio_reads_our_file(tmp_path):
    fabio = pytest.importorskip("fabio")
    data = np.arange(12, dtype=np.uint16).reshape(3, 4) * 1000 + 7
    path = tmp_path / "b.img"
    smv.write_smv(path, data, example_header(distance_mm=250.5))
    image = fabio.open(str(path))
    assert np.array_equal(image.data, data)
    assert image.header["DISTANCE"] == "250.5" and image.header["SIZE1"] == "4"
    assert image.header["DIALS_ORIGIN"] == "-0.2,0.15,-100"


def raw_smv(keys: str, pixels: bytes, header_bytes: int = 512) -> bytes:
    text = "{\nHEADER_BYTES=%d;\nDIM=2;\n%s}\f" % (header_bytes, keys)
    return text.encode("ascii").ljust(header_bytes, b" ") + pixels


def test_read_byte_order_size_fallback_and_header_size(tmp_path):
    values = np.array([[1, 258], [513, 65534]], dtype=np.uint16)
    other = "big_endian" if sys.byteorder == "little" else "little_endian"
    path = tmp_path / "c.img"
    # the LAST BYTE_ORDER counts; pixels in the other byte order are swapped
    path.write_bytes(raw_smv(f"BYTE_ORDER={sys.byteorder}_endian;\nBYTE_ORDER={other};\nSIZE1=2;\nSIZE2=2;\n",
                             values.byteswap().tobytes()))
    assert np.array_equal(smv.read_smv(path).data, values)
    # no SIZE1: square DETECTOR_DIMENSIONS; a 1024-byte header
    path.write_bytes(raw_smv("DETECTOR_DIMENSIONS=2;\n", values.tobytes(), header_bytes=1024))
    image = smv.read_smv(path)
    assert (image.width, image.height) == (2, 2) and np.array_equal(image.data, values)


@pytest.mark.parametrize("content, reason", [
    (None, "cannot read"),
    (b"{\nHEADER_BYTES=512;\n", "too short"),
    (b"P5\n" + b" " * 600, "does not look like an SMV"),
    (raw_smv("SIZE1=100;\nSIZE2=100;\n", b"\0" * 10), "truncated"),
    (raw_smv("SIZE1=0;\n", b""), "bad SMV image size"),
])
def test_read_errors_name_the_file(tmp_path, content, reason):
    path = tmp_path / "bad.img"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(InputError) as info:
        smv.read_smv(path)
    message = str(info.value)
    assert str(path) in message and reason in message and "\n" not in message


def test_header_value_follows_c_valueof():
    header = "{\nDISTANCE=100;\nCLOSE_DISTANCE=95.5;\nXDS_ORGX=12.25;\nNOTE=;\nLAST\n}"
    assert smv.header_value(header, "DISTANCE") == 95.5  # the last occurrence is inside CLOSE_DISTANCE
    assert smv.header_value(header, "ORGX") == 12.25  # plain substring of XDS_ORGX
    assert math.isnan(smv.header_value(header, "TWOTHETA"))
    assert smv.header_value(header, "LAST") == 0.0  # no "=" after it
    assert smv.header_value(header, "NOTE") == 0.0  # "=" then no number
    assert smv.header_value("A= \t-1.5e2xyz;", "A") == -150.0  # atof: blanks, sign, numeric prefix
    assert smv.header_value("A=0x1p4;", "A") == 16.0
    assert smv.header_value("A=.5e;", "A") == 0.5
    assert smv.header_value("A=infinity;", "A") == math.inf
    assert math.isnan(smv.header_value("A=nan(1);", "A"))
    assert smv.header_value("KEY=1;KEY=2;", "KEY") == 2.0
