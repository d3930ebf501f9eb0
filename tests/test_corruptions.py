"""Corruptions for the robustness section: deterministic, lazy (bounded memory), and in every export's card."""

import tracemalloc

import numpy as np
import pytest

from edgekd.data.corruptions import CORRUPTIONS, corrupt
from edgekd.errors import EdgekdError


@pytest.fixture(scope="module")
def images():
    rng = np.random.default_rng(0)
    base = rng.integers(0, 256, (1, 32, 32, 3), dtype=np.uint8)
    smooth = np.repeat(np.repeat(rng.integers(40, 220, (64, 8, 8, 3), dtype=np.uint8), 4, axis=1), 4, axis=2)
    return np.concatenate([base, smooth])


@pytest.mark.parametrize("name", list(CORRUPTIONS))
def test_each_corruption_is_deterministic_whatever_the_batching(images, name):
    view = corrupt(images, name, seed=3)
    whole = view[:]
    assert whole.dtype == np.uint8 and whole.shape == images.shape and len(view) == len(images)
    np.testing.assert_array_equal(np.concatenate([view[i : i + 7] for i in range(0, len(images), 7)]), whole)
    np.testing.assert_array_equal(view[5], whole[5])
    np.testing.assert_array_equal(corrupt(images, name, seed=3)[10:20], whole[10:20])  # a fresh view, the same pixels
    assert not np.array_equal(whole, images)  # it changes the images
    if name == "gaussian_noise":  # the seed matters where there is randomness
        assert not np.array_equal(corrupt(images, name, seed=4)[:], whole)


def test_corruptions_get_worse_with_severity(images):
    err = {q: np.abs(corrupt(images, f"jpeg{q}")[:].astype(int) - images).mean() for q in (90, 75, 50)}
    assert err[90] < err[75] < err[50]
    assert corrupt(images, "contrast")[:].std() < images.std()
    assert corrupt(images, "brightness")[:].mean() > images.mean()
    assert corrupt(images, "gaussian_blur")[1:].std() < images[1:].std()


def test_a_view_holds_one_slice_not_the_split():
    big = np.lib.stride_tricks.as_strided(np.zeros(32 * 32 * 3, np.uint8), (20000, 32, 32, 3), (0, 96, 3, 1))
    view = corrupt(big, "gaussian_noise")
    tracemalloc.start()
    for lo in range(0, 2000, 250):
        view[lo : lo + 250]
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert peak < 8 * 250 * 32 * 32 * 3  # a few batches' worth, never the 60 MB split


def test_unknown_corruption_is_a_clear_error(images):
    with pytest.raises(EdgekdError, match="unknown corruption"):
        corrupt(images, "fog")


def test_every_export_card_carries_the_robustness_section(exported):
    rob = exported["card"]["robustness"]
    assert set(rob["corruptions"]) == set(CORRUPTIONS)
    assert set(rob["accuracy"]) == {"torch", *(k for k, v in exported["card"]["formats"].items() if v["status"] == "ok")}
    assert rob["images"] == min(1000, len(exported["test"]))
    for acc in rob["accuracy"].values():
        assert set(acc) == {"clean", *CORRUPTIONS} and all(0 <= v <= 100 for v in acc.values())
    torch_row = rob["accuracy"]["torch"]
    assert abs(torch_row["clean"] - exported["card"]["reference"]["test_acc"]) < 1e-9  # clean = the whole test split here
    assert min(torch_row[c] for c in CORRUPTIONS) < torch_row["clean"]  # some corruption costs accuracy
    md = (exported["out"] / "card.md").read_text()
    assert "## Robustness" in md and "jpeg75" in md
