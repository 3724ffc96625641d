"""Posterior diagnostics."""

from sbi_lite.diagnostics.c2st import c2st
from sbi_lite.diagnostics.convergence import DEFAULT_DRAWS, DEFAULT_THRESHOLD, converged, null_change, posterior_change
from sbi_lite.diagnostics.coverage import CoverageResult, expected_coverage, hpd_ranks
from sbi_lite.diagnostics.diagnose import DiagnosticReport, diagnose
from sbi_lite.diagnostics.distance import median_distance
from sbi_lite.diagnostics.ecdf import EcdfBand, ecdf_band, ecdf_gamma_test, rank_ecdf
from sbi_lite.diagnostics.kde import kde_bandwidth, kde_nll
from sbi_lite.diagnostics.mmd import mmd_length_scale, mmd_squared
from sbi_lite.diagnostics.predictive import PredictiveResult, posterior_predictive_check, predictive_p_values
from sbi_lite.diagnostics.sbc import SBCResult, chi2_uniformity, holm, run_sbc, sbc, sbc_ranks
from sbi_lite.diagnostics.sequential import TruncatedSBCResult, truncated_sbc, truncation_box
from sbi_lite.diagnostics.tarp import TARPResult, tarp, tarp_ranks
from sbi_lite.diagnostics.testset import Box, sample_truncated_prior
from sbi_lite.diagnostics.typicality import TypicalityResult, check_observation

__all__ = ["c2st", "EcdfBand", "ecdf_band", "ecdf_gamma_test", "rank_ecdf", "SBCResult", "sbc_ranks", "sbc",
           "run_sbc", "chi2_uniformity", "holm", "CoverageResult", "hpd_ranks", "expected_coverage",
           "TARPResult", "tarp_ranks", "tarp", "PredictiveResult", "predictive_p_values",
           "posterior_predictive_check", "TypicalityResult", "check_observation",
           "Box", "sample_truncated_prior", "truncation_box", "TruncatedSBCResult", "truncated_sbc",
           "DEFAULT_DRAWS", "DEFAULT_THRESHOLD", "posterior_change", "null_change", "converged",
           "DiagnosticReport", "diagnose", "kde_bandwidth", "kde_nll", "median_distance",
           "mmd_length_scale", "mmd_squared"]
