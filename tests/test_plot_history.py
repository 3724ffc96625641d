import numpy as np
import pandas as pd

from sbi_lite import plot


def test_history_figure_draws_the_history(tmp_path):
    h = pd.DataFrame({"round": [1, 2, 3], "best_validation_loss": [3.1, 2.0, 1.7],
                      "acceptance_rate": [np.nan, 0.6, 0.4], "posterior_change": [np.nan, 0.5, 0.1],
                      "seconds_propose": [0.0, 1.0, 1.5], "seconds_simulate": [2.0, 2.0, 2.0],
                      "seconds_train": [5.0, 3.0, 1.0]})
    fig = plot.history(h, path=tmp_path / "h.png")
    loss, acceptance, change, seconds = fig.axes
    assert np.array_equal(loss.lines[0].get_ydata(), [3.1, 2.0, 1.7])
    assert np.allclose(change.lines[0].get_ydata()[1:], [0.5, 0.1])
    tops = [patch.get_y() + patch.get_height() for patch in seconds.patches]
    assert np.allclose(tops[-3:], [7.0, 6.0, 4.5])  # the stacks reach propose + simulate + train
    assert (tmp_path / "h.png").stat().st_size > 1000


def test_history_figure_shows_chain_health_for_mcmc_methods():
    h = pd.DataFrame({"round": [1, 2, 3], "best_validation_loss": [3.1, 2.0, 1.7],
                      "acceptance_rate": [np.nan] * 3, "mcmc_rhat": [np.nan, 1.004, 1.02],
                      "posterior_change": [np.nan, 0.5, 0.1], "seconds_propose": [0.0, 1.0, 1.5],
                      "seconds_simulate": [2.0, 2.0, 2.0], "seconds_train": [5.0, 3.0, 1.0]})
    panel = plot.history(h).axes[1]
    assert panel.get_title() == "MCMC nested R-hat"
    assert np.allclose(panel.lines[0].get_ydata()[1:], [1.004, 1.02])
    assert panel.lines[1].get_ydata()[0] == 1.01  # the warning level
