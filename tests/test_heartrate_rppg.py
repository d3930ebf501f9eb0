"""The product's rPPG: skin pixels only, tiles ranked by their own SNR, colour tiles that follow the face."""

import numpy as np

from edgekd.heartrate.fusion import DEFAULT_MIN_SNR_DB_RPPG
from edgekd.heartrate.rppg import is_skin, pos_signal, rppg_estimate, tile_rects, tile_stats, tiled_rppg_estimate

SKIN_BGR = (110, 130, 180)  # a mid skin tone, inside the YCrCb skin box
FS = 15.0


def _pulse_traces(rng, clean_tiles=4, noisy_tiles=12, seconds=12, noise=3.0):
    """(T, K, 3) tile traces: a 84-bpm colour pulse in a few clean tiles, the rest drowned in noise."""
    t = np.arange(int(seconds * FS)) / FS
    pulse = 0.004 * np.sin(2 * np.pi * 1.4 * t)[:, None] * np.array([0.3, 0.8, 0.5])
    skin = np.array(SKIN_BGR[::-1], float)
    tiles = [skin * (1 + pulse) + 0.2 * rng.normal(size=(len(t), 3)) for _ in range(clean_tiles)]
    tiles += [skin * (1 + pulse) + noise * rng.normal(size=(len(t), 3)) for _ in range(noisy_tiles)]
    return np.stack(tiles, axis=1)


def test_the_best_tiles_find_a_pulse_that_the_whole_area_average_drowns():
    for seed in range(3):
        traces = _pulse_traces(np.random.default_rng(seed))
        tiled, pulse, snrs = tiled_rppg_estimate(traces, FS)
        whole, _ = rppg_estimate(traces.mean(axis=1), FS)
        assert abs(tiled.bpm - 84.0) < 1.5 and tiled.snr_db >= DEFAULT_MIN_SNR_DB_RPPG
        assert tiled.snr_db > whole.snr_db + 3.0  # averaging every tile lets the noisy ones in
        assert len(set(np.argsort(snrs)[-4:].tolist()) & {0, 1, 2, 3}) >= 3  # the clean tiles rank first
        assert pulse.shape == (traces.shape[0],)


def test_tiles_with_missing_samples_are_left_out_and_no_tile_is_not_a_crash():
    traces = _pulse_traces(np.random.default_rng(0))
    traces[:, 5:] = np.nan  # tiles that left the frame
    est, _, snrs = tiled_rppg_estimate(traces, FS)
    assert abs(est.bpm - 84.0) < 1.5 and np.isneginf(snrs[5:]).all()
    est, pulse, _ = tiled_rppg_estimate(np.full((150, 3, 3), np.nan), FS)
    assert np.isnan(est.bpm) and not pulse.any()


def test_a_tile_averages_only_its_skin_pixels():
    frame = np.zeros((40, 80, 3), np.uint8)
    frame[:, :40] = SKIN_BGR
    frame[:, 40:] = (40, 160, 40)  # green background: not skin
    frame[:20, 40:] = SKIN_BGR  # half of the right tile is skin
    assert is_skin(frame)[:, :40].all() and not is_skin(frame)[20:, 40:].any()
    tiles = tile_rects([(0, 0, 80, 40)], (2, 1))
    assert tiles == [(0, 0, 40, 40), (40, 0, 80, 40)]
    means, dark, saturated = tile_stats(frame, tiles)
    np.testing.assert_allclose(means, [SKIN_BGR[::-1], SKIN_BGR[::-1]])  # the green half is ignored
    assert not dark and not saturated
    means, _, _ = tile_stats(frame, [(60, 20, 80, 40), (200, 200, 240, 240)])
    np.testing.assert_allclose(means[0], (40, 160, 40))  # no skin at all: the tile's own pixels, not nothing
    assert np.isnan(means[1]).all()  # outside the frame


def test_vectorised_pos_matches_the_definition():
    rng = np.random.default_rng(1)
    rgb = 100 + rng.normal(size=(90, 3)).cumsum(axis=0)
    length = int(round(1.6 * FS))
    expected = np.zeros(len(rgb))
    for start in range(len(rgb) - length + 1):  # Wang et al. 2017, Algorithm 1, one block at a time
        block = rgb[start : start + length]
        s = (block / block.mean(axis=0)) @ np.array([[0.0, 1.0, -1.0], [-2.0, 1.0, 1.0]]).T
        p = s[:, 0] + s[:, 0].std() / s[:, 1].std() * s[:, 1]
        expected[start : start + length] += p - p.mean()
    np.testing.assert_allclose(pos_signal(rgb, FS), expected, atol=1e-12)


def test_colour_tiles_follow_a_moving_face_without_tracking():
    from conftest import shared_path
    from edgekd.heartrate.monitor import HeartRateMonitor
    from edgekd.track.groundtruth import face_frame
    from edgekd.track.preprocess import read_image

    image, _ = face_frame(read_image(shared_path("faces", "stills", "obama.jpg")))
    h, w = image.shape[:2]
    canvas = np.zeros((h, w + 80, 3), np.uint8)
    monitor = HeartRateMonitor(FS, method="rppg", window_s=6, step_s=1)
    for i in range(int(8 * FS)):
        shift = 0 if i < 4 * FS else 60  # the head moves 60 px sideways halfway through
        canvas[:] = 0
        canvas[:, shift : shift + w] = image
        monitor.push(canvas)
    assert monitor._tracker is None  # rPPG alone tracks nothing: the face is found again every step
    x0 = min(t[0] for t in monitor._tiles)
    assert monitor.face_box[0] > 40 and x0 > monitor.face_box[0]  # the tiles sit on the moved face
