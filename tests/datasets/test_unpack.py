"""datasets.unpack on zips built in the DCASE layout: atomic, checked, merged, marked, skipped."""

from __future__ import annotations

import pytest

from datasets.catalog import year_info
from datasets.manifest import machine_clips
from datasets.unpack import UnpackError, is_unpacked, marker_path, unpack_archive
from tests.zenodo_fixtures import build_zip, clip_names

EXPECTED = year_info(2024).expected_clips  # 1000 train, 200 test clips per section


def write_zip(path, data: bytes):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def test_dev_zip_unpacks_into_the_machine_folder_with_a_marker(tmp_path):
    raw = tmp_path / "dev_data" / "raw"
    zip_path = write_zip(tmp_path / "zips" / "dev_fan.zip", build_zip("fan", clip_names("dev")))
    result = unpack_archive(zip_path, raw, "fan", "dev", EXPECTED("dev", "fan"), sections=("00",))
    assert result.clips == {"train": 1000, "test": 200} and not result.skipped
    assert sorted(p.name for p in (raw / "fan").iterdir()) == [
        ".completed_dev_fan.zip",
        "attributes_00.csv",
        "test",
        "train",
    ]
    assert len(machine_clips(raw, "fan", "test")) == 200
    assert not (tmp_path / "dev_data" / ".tmp").exists()
    assert zip_path.exists()  # the caller decides whether to keep it


def test_rerun_skips_and_force_redoes(tmp_path):
    raw = tmp_path / "raw"
    zip_path = write_zip(tmp_path / "dev_fan.zip", build_zip("fan", clip_names("dev", train=20, test=8)))
    unpack_archive(zip_path, raw, "fan", "dev")
    stray = raw / "fan" / "train" / "section_00_source_train_normal_9999_a_1.wav"
    stray.write_bytes(b"not from the zip")
    assert unpack_archive(zip_path, raw, "fan", "dev").skipped
    assert stray.exists()
    redone = unpack_archive(zip_path, raw, "fan", "dev", force=True)
    assert not redone.skipped and not stray.exists()  # the split folder was replaced whole
    assert is_unpacked(raw / "fan", "dev_fan.zip")


def test_additional_train_and_eval_test_share_the_machine_folder(tmp_path):
    raw = tmp_path / "eval_data" / "raw"
    train_zip = write_zip(
        tmp_path / "eval_data_bandsaw_train.zip", build_zip("bandsaw", clip_names("additional_train", train=20))
    )
    test_zip = write_zip(tmp_path / "eval_data_bandsaw_test.zip", build_zip("bandsaw", clip_names("eval_test", test=8)))
    unpack_archive(train_zip, raw, "bandsaw", "additional_train", {"train": 20})
    unpack_archive(test_zip, raw, "bandsaw", "eval_test", {"test": 8})
    machine = raw / "bandsaw"
    assert is_unpacked(machine, train_zip.name) and is_unpacked(machine, test_zip.name)
    assert len(list((machine / "train").iterdir())) == 20 and len(list((machine / "test").iterdir())) == 8
    rows = (machine / "attributes_00.csv").read_text().splitlines()
    assert rows[0] == "file_name,d1p,d1v" and len(rows) == 1 + 20 + 8  # both tables merged
    assert rows[1:] == sorted(rows[1:])
    # the test zip again, forced: train/ is untouched
    unpack_archive(test_zip, raw, "bandsaw", "eval_test", force=True)
    assert len(list((machine / "train").iterdir())) == 20


def test_top_folder_with_another_name_or_none(tmp_path):
    for top in ("dev_data/fan", "something_else", ""):
        raw = tmp_path / (top.replace("/", "_") or "none") / "raw"
        zip_path = write_zip(raw.parent / "dev_fan.zip", build_zip("fan", clip_names("dev", train=10, test=8), top=top))
        result = unpack_archive(zip_path, raw, "fan", "dev")
        assert result.clips == {"train": 10, "test": 8}
        assert sorted(p.name for p in (raw / "fan").iterdir()) == [
            ".completed_dev_fan.zip",
            "attributes_00.csv",
            "test",
            "train",
        ]


def test_2021_source_and_target_test_folders(tmp_path):
    names = clip_names("dev", train=10, test=8)
    folders = {
        "train": names["train"],
        "source_test": [n for n in names["test"] if "_source_" in n],
        "target_test": [n for n in names["test"] if "_target_" in n],
    }
    zip_path = write_zip(tmp_path / "dev_data_fan.zip", build_zip("fan", folders))
    result = unpack_archive(zip_path, tmp_path / "raw", "fan", "dev")
    assert result.clips == {"train": 10, "test": 8}
    assert (tmp_path / "raw" / "fan" / "source_test").is_dir() and (tmp_path / "raw" / "fan" / "target_test").is_dir()


def test_truncated_zip_stops_names_the_file_and_leaves_nothing(tmp_path):
    data = build_zip("fan", clip_names("dev", train=20, test=8))
    zip_path = write_zip(tmp_path / "zips" / "dev_fan.zip", data[: len(data) // 2])
    raw = tmp_path / "dev_data" / "raw"
    with pytest.raises(UnpackError) as e:
        unpack_archive(zip_path, raw, "fan", "dev")
    message = str(e.value)
    assert "dev_fan.zip is corrupt or truncated" in message and "rerun the same command" in message
    assert not (raw / "fan").exists() and not (tmp_path / "dev_data" / ".tmp").exists()
    assert not zip_path.exists() and (tmp_path / "zips" / "dev_fan.zip.corrupt").exists()  # a rerun fetches it again


def test_corrupt_member_crc_stops_and_leaves_an_existing_machine_folder_intact(tmp_path):
    raw = tmp_path / "raw"
    train_zip = write_zip(
        tmp_path / "eval_data_grinder_train.zip", build_zip("grinder", clip_names("additional_train", train=10))
    )
    unpack_archive(train_zip, raw, "grinder", "additional_train")
    before = sorted(p.name for p in (raw / "grinder").rglob("*"))

    data = bytearray(build_zip("grinder", clip_names("eval_test", test=8)))
    offset = bytes(data).index(b"section_00_0003.wav") + len("section_00_0003.wav")
    data[offset + 5] ^= 0xFF  # a byte of the compressed payload of one member
    test_zip = write_zip(tmp_path / "eval_data_grinder_test.zip", bytes(data))
    with pytest.raises(UnpackError, match="eval_data_grinder_test.zip is corrupt"):
        unpack_archive(test_zip, raw, "grinder", "eval_test")
    assert sorted(p.name for p in (raw / "grinder").rglob("*")) == before
    assert not (raw / "grinder" / "test").exists()


def test_too_few_clips_is_refused(tmp_path):
    zip_path = write_zip(tmp_path / "dev_fan.zip", build_zip("fan", clip_names("dev", train=999, test=8)))
    with pytest.raises(UnpackError, match="brings 999 train clips in train/, fewer than the 1000"):
        unpack_archive(zip_path, tmp_path / "raw", "fan", "dev", EXPECTED("dev", "fan"))
    assert not (tmp_path / "raw" / "fan").exists()
    assert zip_path.exists()


def test_missing_or_foreign_split_is_refused(tmp_path):
    only_train = write_zip(tmp_path / "dev_fan.zip", build_zip("fan", {"train": clip_names("dev", train=10)["train"]}))
    with pytest.raises(UnpackError, match="brings 0 test clips"):
        unpack_archive(only_train, tmp_path / "raw", "fan", "dev")
    with_train = write_zip(tmp_path / "eval_data_x_test.zip", build_zip("x", clip_names("dev", train=10, test=8)))
    with pytest.raises(UnpackError, match="is a eval_test zip but holds train clips"):
        unpack_archive(with_train, tmp_path / "raw", "x", "eval_test")
    assert not (tmp_path / "raw").exists() or not any((tmp_path / "raw").iterdir())


def test_clips_of_another_section_or_naming_scheme_are_refused(tmp_path):
    zip_path = write_zip(tmp_path / "dev_fan.zip", build_zip("fan", clip_names("dev", train=10, test=8, section="03")))
    with pytest.raises(UnpackError, match="section 03"):
        unpack_archive(zip_path, tmp_path / "raw", "fan", "dev", sections=("00",))
    odd = write_zip(
        tmp_path / "dev_pump.zip", build_zip("pump", {"train": ["hello.wav"], "test": ["section_00_0000.wav"]})
    )
    with pytest.raises(UnpackError, match="matches no DCASE naming scheme"):
        unpack_archive(odd, tmp_path / "raw", "pump", "dev")


def test_unsafe_member_names_are_refused(tmp_path):
    data = build_zip("fan", clip_names("dev", train=10, test=8), extra={"../escape.txt": b"x"})
    zip_path = write_zip(tmp_path / "z" / "dev_fan.zip", data)
    with pytest.raises(UnpackError, match="unsafe member name"):
        unpack_archive(zip_path, tmp_path / "z" / "raw", "fan", "dev")
    assert not (tmp_path / "escape.txt").exists() and not (tmp_path / "z" / "escape.txt").exists()


def test_marker_path_is_per_archive(tmp_path):
    assert marker_path(tmp_path / "fan", "dev_fan.zip") == tmp_path / "fan" / ".completed_dev_fan.zip"
