"""Bad and hostile input, as a new user and an attacker try it (issue "Wrong numbers, tracebacks, and checks that
hold on one machine only", items 2-16; item 1 is tests/test_untouched.py).  Each test failed before its fix.

CLI errors: exit 2, one line on stderr naming the file or flag, no traceback, nothing computed before the
check (the Inception forward is replaced by one that fails the test where a check must come first)."""

from __future__ import annotations

import json
import os
import struct
import warnings
import zipfile

import numpy as np
import pytest
import torch
from PIL import Image

import ganmetrics as gm
from conftest import write_pngs
from ganmetrics.cli import main
from ganmetrics.data.synthetic import render_images
from ganmetrics.features import FeatureExtractor
from ganmetrics.metrics.kid import kid_from_features
from ganmetrics.sources import open_source, quantize, to_uint8_batch


def run_cli(capsys, *args) -> tuple[int, str, str]:
    code = main([str(a) for a in args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def assert_one_line_error(code: int, err: str, *needles: str, absent: tuple[str, ...] = ()) -> None:
    assert code == 2, err
    assert "Traceback" not in err
    lines = [line.strip() for line in err.replace("\r", "\n").strip().splitlines()
             if line.strip() and "warning:" not in line and "img/s" not in line]  # warnings, progress bars
    assert len(lines) == 1 and lines[0].startswith("ganmetrics "), err
    for needle in needles:
        assert needle in err, err
    for word in absent:
        assert word not in err, err


@pytest.fixture
def no_features(monkeypatch):
    """Fail the test if any Inception forward runs: the error it checks must come before the work."""
    def refuse(self, images):
        raise AssertionError("features were computed before the input was checked")
    monkeypatch.setattr(FeatureExtractor, "__call__", refuse)


@pytest.fixture
def stats_file(tmp_path) -> str:
    """A valid ganmetrics statistics file (features of random vectors; no network needed)."""
    stats = gm.FeatureStats(2048, meta={"protocol": "tf", "weights_sha256": None, "source": "random"})
    stats.update(np.random.default_rng(0).standard_normal((50, 2048)))
    return str(stats.save(tmp_path / "valid.npz"))


# --- 2. a covariance that is not positive semi-definite ---------------------------------------------------------

@pytest.mark.parametrize("kind", ["negative_identity", "one_negative_variance", "negative_eigenvalue"])
def test_non_psd_covariance_is_refused_naming_the_file(capsys, tmp_path, stats_file, kind):
    sigma = np.eye(2048)
    if kind == "negative_identity":  # printed FID 0.000000 with exit 0 before
        sigma = -sigma
    elif kind == "one_negative_variance":
        sigma[7, 7] = -1.0
    else:  # I − 3uuᵀ (u a unit vector spread over all features): eigenvalue −2, yet every variance positive
        u = np.random.default_rng(1).choice([-1.0, 1.0], 2048) / np.sqrt(2048)
        sigma = sigma - 3 * np.outer(u, u)
        assert np.diag(sigma).min() > 0
    bad = tmp_path / "neg.npz"
    np.savez(bad, mu=np.zeros(2048), sigma=sigma)
    with pytest.raises(gm.StatsError, match="neg.npz"):
        gm.load_stats(bad)
    code, out, err = run_cli(capsys, "fid", stats_file, bad)
    assert_one_line_error(code, err, "neg.npz", "covariance")
    assert out == ""


def test_rounding_level_negative_eigenvalues_still_load(tmp_path):
    """No false alarm: a singular covariance (N < d) stored in float32, whose eigenvalues rounding pushes below 0,
    loads; so does the bundled compact shapes32 file."""
    x = np.random.default_rng(2).standard_normal((300, 2048))
    sigma32 = np.cov(x, rowvar=False).astype(np.float32)  # rank 299: rounding leaves eigenvalues around 0, some < 0
    path = tmp_path / "singular32.npz"
    np.savez(path, mu=np.zeros(2048), sigma=sigma32)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # no ganmetrics metadata: a warning, not the subject here
        assert gm.load_stats(path).sigma.shape == (2048, 2048)
    from ganmetrics.reference import reference_path
    assert gm.load_stats(reference_path("shapes32")).num_samples == 10_000


# --- 3. FID.update() with floats in [0, 1] ---------------------------------------------------------------------

def test_metric_object_warns_once_about_0_1_floats(offline_weights):
    fid = gm.FID(real=None, weights=str(offline_weights))
    batch = torch.rand(2, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        fid.update(batch)
        fid.update(batch)
    messages = [str(w.message) for w in caught if "value_range=(0, 1)" in str(w.message)]
    assert len(messages) == 1, [str(w.message) for w in caught]


# --- 4. --value-range on the CLI, and messages in the CLI's words -----------------------------------------------

def test_cli_value_range_maps_float_arrays(capsys, tmp_path):
    x = np.random.default_rng(3).random((4, 16, 16, 3)).astype(np.float32)
    np.save(tmp_path / "f01.npy", x)
    code, _, err = run_cli(capsys, "grid", tmp_path / "f01.npy", "-o", tmp_path / "g.png", "--padding", "0",
                           "--columns", "4", "--value-range", "0", "1")
    assert code == 0, err
    grid = np.asarray(Image.open(tmp_path / "g.png").convert("RGB"))
    expected = quantize(torch.from_numpy(x).permute(0, 3, 1, 2), (0, 1)).permute(0, 2, 3, 1).numpy()
    assert np.array_equal(grid, np.concatenate(list(expected), axis=1))


def test_cli_messages_name_cli_flags(capsys, tmp_path, no_features, stats_file):
    np.save(tmp_path / "f255.npy", np.random.default_rng(4).random((4, 16, 16, 3)).astype(np.float32) * 255)
    code, _, err = run_cli(capsys, "fid", tmp_path / "f255.npy", stats_file)
    assert_one_line_error(code, err, "--value-range 0 255", absent=("value_range=",))
    with pytest.raises(gm.InputError, match=r"value_range=\(0, 255\)"):  # Python callers get Python words
        open_source(np.random.default_rng(4).random((4, 16, 16, 3)).astype(np.float32) * 255)
    other = gm.FeatureStats.from_moments(np.zeros(2048), np.eye(2048), 10, meta={"protocol": "clean"})
    other_path = other.save(tmp_path / "clean.npz")
    code, _, err = run_cli(capsys, "fid", stats_file, other_path)
    assert_one_line_error(code, err, "--no-strict", absent=("strict=False",))
    code, _, err = run_cli(capsys, "eval", stats_file, "--metrics", "fid")
    assert_one_line_error(code, err, "give B", absent=("real=",))


# --- 5. zip bombs ------------------------------------------------------------------------------------------------

def _declare_size(path, member: str, size: int) -> None:
    """Rewrite the uncompressed size the zip's central directory declares for ``member``."""
    data = bytearray(path.read_bytes())
    start = data.index(b"PK\x01\x02")  # the (only) central directory entry
    assert data[start + 46:start + 46 + len(member)] == member.encode()
    data[start + 24:start + 28] = struct.pack("<I", size)
    path.write_bytes(bytes(data))


def test_zip_member_declared_larger_than_any_image_is_refused_unread(tmp_path, monkeypatch, capsys, no_features):
    bomb = tmp_path / "bomb.zip"
    with zipfile.ZipFile(bomb, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("huge.png", b"\0" * 4096)
    _declare_size(bomb, "huge.png", 2**31)  # 2 GiB declared, as a real bomb's member is
    read = []
    monkeypatch.setattr(zipfile.ZipFile, "open", lambda *a, **k: read.append(a) or pytest.fail("member opened"))
    code, _, err = run_cli(capsys, "fid", bomb, bomb, "--num-workers", "0")
    assert_one_line_error(code, err, "bomb.zip:huge.png", "2,147,483,648", absent=("BytesIO",))
    assert not read


def test_zip_member_that_inflates_past_its_declared_size_is_refused(tmp_path, capsys, no_features):
    liar = tmp_path / "liar.zip"
    with zipfile.ZipFile(liar, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("a.png", b"\0" * (1 << 22))  # 4 MiB of zeros, declared as 1 KiB
    _declare_size(liar, "a.png", 1024)
    code, _, err = run_cli(capsys, "fid", liar, liar, "--num-workers", "0")
    assert_one_line_error(code, err, "liar.zip:a.png")


def test_real_zip_bomb_under_a_lowered_pixel_cap(tmp_path, monkeypatch):
    """The cap follows PIL.Image.MAX_IMAGE_PIXELS (× 8 bytes + 1 MiB): lowered to 100,000 pixels, a 4 MiB
    member (of a 4 KiB archive) is over it; its declared size is the true one."""
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 100_000)
    bomb = tmp_path / "zeros.zip"
    with zipfile.ZipFile(bomb, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("z.png", b"\0" * (1 << 22))
    assert bomb.stat().st_size < 8192
    with pytest.raises(gm.InputError, match="zeros.zip:z.png: the member declares 4,194,304 bytes"):
        list(open_source(bomb, num_workers=0))


def test_unidentified_zip_member_is_named_without_bytesio(tmp_path):
    archive_path = tmp_path / "junk.zip"
    with zipfile.ZipFile(archive_path, "w") as archive:
        archive.writestr("x.png", b"this is no image" * 10)
    with pytest.raises(gm.InputError, match="junk.zip:x.png") as info:
        list(open_source(archive_path, num_workers=0))
    assert "BytesIO" not in str(info.value)


# --- 6. devices that do not exist --------------------------------------------------------------------------------

@pytest.mark.parametrize("device", [f"cuda:{torch.cuda.device_count()}", "tpu", "xyz:0"]
                         + ([] if torch.backends.mps.is_available() else ["mps"])
                         + ([] if torch.cuda.is_available() else ["cuda"]))
def test_unavailable_device_is_one_error(capsys, tmp_path, device, stats_file):
    np.save(tmp_path / "u8.npy", render_images("shapes", 4))
    code, _, err = run_cli(capsys, "fid", tmp_path / "u8.npy", stats_file, "--device", device)
    assert_one_line_error(code, err, f"--device '{device}'", "available: cpu")
    with pytest.raises(gm.InputError, match="available: cpu"):
        gm.fid(tmp_path / "u8.npy", stats_file, device=device)


# --- 7. -o that cannot be written, checked before the work -------------------------------------------------------

@pytest.mark.parametrize("case", ["existing_folder", "under_a_file", "unwritable"])
def test_unwritable_output_fails_before_features(capsys, tmp_path, image_folders, no_features, case):
    (tmp_path / "folder.npz").mkdir()
    (tmp_path / "folder.html").mkdir()
    (tmp_path / "plain").write_text("a file")
    out = {"existing_folder": tmp_path / "folder", "under_a_file": tmp_path / "plain" / "s",
           "unwritable": "/proc/ganmetrics-test/s"}[case]
    for command, sets, suffix in (("stats", image_folders[:1], ".npz"), ("report", image_folders, ".html")):
        code, _, err = run_cli(capsys, command, *sets, "-o", f"{out}{suffix}")
        assert_one_line_error(code, err, f"-o {out}{suffix}")


# --- 8. broken statistics files ----------------------------------------------------------------------------------

def test_stats_file_with_string_mu_or_without_sigma(capsys, tmp_path, no_features, stats_file):
    strings = tmp_path / "strings.npz"
    np.savez(strings, mu=np.array(["x"] * 2048), sigma=np.eye(2048))
    code, _, err = run_cli(capsys, "fid", stats_file, strings)
    assert_one_line_error(code, err, "strings.npz", "numeric")
    lonely = tmp_path / "lonely.npz"
    np.savez(lonely, mu=np.zeros(2048))
    for args in ((stats_file, lonely), (lonely, stats_file)):  # either side: a broken stats file, not images
        code, _, err = run_cli(capsys, "fid", *args)
        assert_one_line_error(code, err, "lonely.npz", "'sigma'", absent=("N×H×W×C",))


# --- 9. metric objects fed something that is not a batch ---------------------------------------------------------

@pytest.mark.parametrize("bad", ["A", 3, None, [1, 2], []])
def test_update_with_a_non_batch_says_what_it_takes(bad):
    with pytest.raises(gm.InputError, match="tensor N×C×H×W|empty"):
        to_uint8_batch(bad, what="FID.update() batch")


def test_fid_object_update_with_a_path(offline_weights):
    fid = gm.FID(real=None, weights=str(offline_weights))
    with pytest.raises(gm.InputError, match="FID.update\\(\\) batch is a str; expected a batch of images"):
        fid.update("A")


# --- 10. a file that is not Inception weights --------------------------------------------------------------------

def test_random_weights_file_is_one_line_without_unsafe_advice(capsys, tmp_path, no_features, stats_file):
    junk = tmp_path / "mine.pth"
    junk.write_bytes(np.random.default_rng(5).bytes(5000))
    np.save(tmp_path / "u8.npy", render_images("shapes", 4))
    code, _, err = run_cli(capsys, "fid", tmp_path / "u8.npy", stats_file, "--weights", junk)
    assert_one_line_error(code, err, "mine.pth", "pt_inception-2015-12-05", "default_1.pt",
                          absent=("weights_only", "fetch it again"))


# --- 11. both inputs checked before either is processed ----------------------------------------------------------

def test_fid_checks_b_before_reading_a(capsys, tmp_path, image_folders, no_features):
    code, _, err = run_cli(capsys, "fid", image_folders[0], tmp_path / "missing")
    assert_one_line_error(code, err, "missing")
    (tmp_path / "empty").mkdir()
    code, _, err = run_cli(capsys, "fid", image_folders[0], tmp_path / "empty")
    assert_one_line_error(code, err, "empty")


def test_eval_checks_b_and_swd_counts_before_reading_a(capsys, tmp_path, image_folders, no_features):
    (tmp_path / "empty").mkdir()
    code, _, err = run_cli(capsys, "eval", image_folders[0], tmp_path / "empty", "--metrics", "fid,kid")
    assert_one_line_error(code, err, "empty")
    few = write_pngs(tmp_path / "few", render_images("shapes", 5))
    code, _, err = run_cli(capsys, "eval", image_folders[0], few, "--metrics", "fid,swd")
    assert_one_line_error(code, err, "--swd-images", "20", "5")


# --- 12. messages that say which set, and read well --------------------------------------------------------------

def test_too_few_images_names_the_set(capsys, tmp_path, stats_file, offline_weights):
    one = write_pngs(tmp_path / "lonely_set", render_images("shapes", 1))
    code, _, err = run_cli(capsys, "fid", one, stats_file, "--no-progress", "--weights", offline_weights)
    assert_one_line_error(code, err, "lonely_set", "at least 2")


def test_swd_size_mismatch_names_both_sets(capsys, tmp_path):
    small = write_pngs(tmp_path / "s", render_images("shapes", 4, size=32))
    large = write_pngs(tmp_path / "l", render_images("shapes", 4, size=64))
    code, _, err = run_cli(capsys, "eval", small, large, "--metrics", "swd", "--no-progress", "--num-workers", "0")
    assert_one_line_error(code, err, "A's images are 32×32 px but B's images are 64×64")


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="named pipes are POSIX")
def test_fifo_named_like_an_image_is_not_called_empty(tmp_path):
    folder = write_pngs(tmp_path / "f", render_images("shapes", 2))
    os.mkfifo(folder / "pipe.png")
    with pytest.raises(gm.InputError, match="pipe.png: not a regular file but a FIFO") as info:
        list(open_source(folder, num_workers=0))
    assert "empty" not in str(info.value)


def test_bad_integer_flag_and_grammar(capsys):
    with pytest.raises(SystemExit):
        main(["fid", "a", "b", "--batch-size", "abc"])
    err = capsys.readouterr().err
    assert "expected an integer, got 'abc'" in err and "_positive_int" not in err
    for bad, noun in ((3, "is an int;"), ([0, 1], "is a list of int;"), (np.float64(1), "is a float64;")):
        with pytest.raises(gm.InputError, match=noun):
            to_uint8_batch(bad)
    with pytest.raises(gm.InputError, match=r"\['images'\] is an int;"):
        list(open_source([{"images": 1}]))


# --- 13. grid of a set smaller than -n ---------------------------------------------------------------------------

def test_grid_counts_the_images_it_draws(capsys, tmp_path):
    np.save(tmp_path / "a.npy", render_images("shapes", 32))
    code, out, err = run_cli(capsys, "grid", tmp_path / "a.npy", "-o", tmp_path / "g.png", "--json")
    assert code == 0, err
    assert json.loads(out)["num_images"] == 32
    code, out, _ = run_cli(capsys, "grid", tmp_path / "a.npy", "-o", tmp_path / "g.png")
    assert "all 32 images" in out and "64" not in out


# --- 14, 15. progress bars name their input; warnings are one clean line ----------------------------------------

def test_fid_bars_name_each_input_and_warnings_are_clean(capsys, tmp_path, offline_weights):
    np.save(tmp_path / "zero_one.npy", np.random.default_rng(6).random((3, 32, 32, 3)).astype(np.float32))
    np.save(tmp_path / "real_u8.npy", render_images("shapes", 3))
    with warnings.catch_warnings():
        warnings.simplefilter("always")  # whatever filters pytest runs under: the warning is raised each time
        code, out, err = run_cli(capsys, "fid", tmp_path / "zero_one.npy", tmp_path / "real_u8.npy",
                                 "--weights", offline_weights, "--num-workers", "0")
    assert code == 0, err
    assert "gen zero_one.npy [tf]" in err and "real real_u8.npy [tf]" in err
    warning_lines = [line for line in err.splitlines() if "warning" in line.lower()]
    assert warning_lines and all(line.startswith("ganmetrics fid: warning: ") for line in warning_lines), err
    assert ".py:" not in err and "return " not in err


# --- 16. KID std when every subset is the whole set --------------------------------------------------------------

def test_kid_std_is_unavailable_when_subsets_are_the_whole_sets():
    rng = np.random.default_rng(7)
    x, y = rng.standard_normal((20, 16)), rng.standard_normal((20, 16)) + 0.5
    with pytest.warns(UserWarning, match="no std"):
        mean, std = kid_from_features(x, y, subsets=10, subset_size=50)
    assert std is None and mean > 0
    with pytest.warns(UserWarning):  # one set larger than the subsets: the subsets differ, the std is real
        _, std = kid_from_features(x, np.concatenate([y, y + 0.1]), subsets=10, subset_size=30)
    assert std is not None and std > 1e-6
    from ganmetrics.cli import format_results
    assert "KID      " in format_results({"kid": {"mean": mean, "std": None}, "protocol": "tf",
                                         "num_samples": [20, 20]})
