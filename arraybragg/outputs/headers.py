"""Header values of the files a render writes, derived from the models it rendered."""
from __future__ import annotations

from ..io import smv
from ..models.nanobragg import RTD


def smv_header_for(sim) -> smv.SMVHeader:
    """Header values nanoBragg writes into its SMV files."""
    d, g = sim.detector, sim.goniometer
    return smv.SMVHeader(
        fpixels=d.fpixels, spixels=d.spixels, pixel_size_mm=d.pixel_size * 1000.0,
        distance_mm=d.distance * 1000.0, wavelength_A=sim.beam.lambda0 * 1e10,
        beam_center_x_mm=d.Xbeam * 1000.0, beam_center_y_mm=d.Ybeam * 1000.0,
        adxv_center_x_mm=d.Fbeam * 1000.0, adxv_center_y_mm=(d.detsize_s - d.Sbeam) * 1000.0,
        mosflm_center_x_mm=(d.Sbeam - 0.5 * d.pixel_size) * 1000.0,
        mosflm_center_y_mm=(d.Fbeam - 0.5 * d.pixel_size) * 1000.0,
        denzo_x_beam_mm=d.Sbeam * 1000.0, denzo_y_beam_mm=d.Fbeam * 1000.0,
        dials_origin_mm=tuple(float(v) for v in d.dials_origin_mm), xds_orgx=d.ORGX, xds_orgy=d.ORGY,
        close_distance_mm=d.close_distance * 1000.0, phi_deg=g.phi0 * RTD, osc_start_deg=g.phi0 * RTD,
        osc_range_deg=g.osc * RTD, twotheta_deg=d.twotheta * RTD)
