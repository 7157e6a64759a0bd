"""The synthetic corpora's layout writer produces what the file-name parser and the manifest read."""

from __future__ import annotations

import numpy as np
import soundfile as sf

from datasets.corpus_layout import attribute_string, clip_name, write_attribute_table, write_wav
from datasets.filenames import NameFields, parse_file_name
from datasets.manifest import machine_clips


def test_names_parse_back():
    name = clip_name("target", "test", "anomaly", 3, attribute_string([("spd", "34"), ("bl", "5")]))
    assert name == "section_00_target_test_anomaly_0003_spd_34_bl_5.wav"
    assert parse_file_name(name) == NameFields("00", "target", "test", "anomaly", 3, "spd_34_bl_5")


def test_table_header_fits_the_widest_row_and_the_manifest_reads_it(tmp_path):
    machine = tmp_path / "Fan"
    wide = clip_name("source", "train", "normal", 0, "a_1_b_2")
    narrow = clip_name("source", "train", "normal", 1, "noAttribute")
    for name in (wide, narrow):
        write_wav(machine / "train" / name, np.zeros(160, dtype=np.float32), 16000)
    write_attribute_table(
        machine, [[f"Fan/train/{narrow}", "noAttribute", ""], [f"Fan/train/{wide}", "a", "1", "b", "2"]]
    )
    lines = (machine / "attributes_00.csv").read_text().splitlines()
    assert lines == ["file_name,d1p,d1v,d2p,d2v", f"Fan/train/{wide},a,1,b,2", f"Fan/train/{narrow},noAttribute,"]
    clips = machine_clips(tmp_path, "Fan", "train")
    assert [c.attributes for c in clips] == [(("a", "1"), ("b", "2")), (("noAttribute", ""),)]
    assert sf.info(str(clips[0].path)).subtype == "PCM_16"
