"""The dataset catalogue against the official baseline's own machine-type and download lists."""

from __future__ import annotations

import pytest
import yaml

from datasets.catalog import newest_year, year_info, years


def _official(dcase_reference, stem):
    return yaml.safe_load((dcase_reference / "official_lists" / f"{stem}.yaml").read_text())


def _official_machines(dcase_reference, year, mode):
    stem = f"machine_type_{year}_{mode}" if year >= 2023 else "machine_type_legacy"
    entry = _official(dcase_reference, stem)[f"DCASE{year}T2"]["machine_type"]
    return {m: tuple(splits[mode]) for m, splits in entry.items() if mode in splits}


def _official_urls(dcase_reference, year):
    stem = f"download_path_{year}" if year >= 2023 else "download_path_legacy"
    entry = _official(dcase_reference, stem)[f"DCASE{year}T2"]
    return {
        url.replace("/record/", "/records/") for splits in entry.values() for urls in splits.values() for url in urls
    }


def test_years_2020_to_2026():
    assert years() == [2020, 2021, 2022, 2023, 2024, 2025, 2026]
    assert newest_year("dev") == 2026 and newest_year("eval_test") == 2025


@pytest.mark.parametrize("year", range(2020, 2027))
@pytest.mark.parametrize("mode", ["dev", "eval"])
def test_machine_types_and_sections_match_the_official_lists(dcase_reference, year, mode):
    assert year_info(year).machines(mode) == _official_machines(dcase_reference, year, mode)


@pytest.mark.parametrize("year", range(2020, 2027))
def test_every_official_download_url_is_in_the_catalogue(dcase_reference, year):
    info = year_info(year)
    ours = {info.archive("dev", m).url() for m in info.dev_machines}
    kinds = [k for k in ("additional_train", "eval_test") if k in info.archives]
    ours |= {info.archive(k, m).url() for k in kinds for m in info.eval_machines}
    assert _official_urls(dcase_reference, year) <= ours


def test_md5_of_2023_and_mirror_urls():
    info = year_info(2023)
    assert info.archive("dev", "fan").md5 == "9348591e96fb0ad499a1e33b082562fc"
    assert all(info.archive(k, m).md5 for k in ("additional_train", "eval_test") for m in info.eval_machines)
    assert (
        info.archive("dev", "fan").url("http://127.0.0.1:8000")
        == "http://127.0.0.1:8000/records/7882613/files/dev_fan.zip"
    )
    assert year_info(2024).archive("additional_train", "RoboticArm").zip_name == "eval_data_RoboticArm_train_r2.zip"


def test_clip_format_per_year():
    assert year_info(2026).channels == 2 and year_info(2025).channels == 1
    assert year_info(2023).max_clip_seconds == 18 and year_info(2020).section_keyword == "id"


def test_unknown_year_machine_and_unpublished_archive_are_explained():
    with pytest.raises(ValueError, match="known years: 2020"):
        year_info(2019)
    with pytest.raises(KeyError, match="not a development machine type of DCASE2024.*valid: ToyCar"):
        year_info(2024).archive("dev", "pump")
    with pytest.raises(KeyError, match="no published eval_test archives"):
        year_info(2026).archive("eval_test", "Sander")
