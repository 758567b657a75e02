"""Paths inside users' data files stay inside their folder: no absolute path, no ``..`` out,
no symbolic link pointing elsewhere (replay mappings, calibration CSVs, label files)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from PIL import Image

from t2iaudit.errors import InputError
from t2iaudit.paths import inside


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    """``data/`` with an image, a sub-folder, a link inside and links out; ``secret`` beside it."""
    data = tmp_path / "data"
    (data / "sub").mkdir(parents=True)
    Image.new("RGB", (8, 8)).save(data / "sub" / "a.png")
    Image.new("RGB", (8, 8)).save(tmp_path / "secret.png")
    os.symlink(data / "sub" / "a.png", data / "link-in.png")
    os.symlink(tmp_path / "secret.png", data / "link-out.png")
    os.symlink(tmp_path, data / "dir-out")
    return tmp_path


@pytest.mark.parametrize("value", ["sub/a.png", "./sub/a.png", "sub/../sub/a.png", "link-in.png", " sub/a.png "])
def test_paths_inside_the_folder_are_accepted(tree: Path, value: str):
    assert inside(tree / "data", value, file="f.csv", field="row 2, column file") == (tree / "data/sub/a.png")


@pytest.mark.parametrize(
    "value, message",
    [
        ("../secret.png", "'../secret.png' leads outside {data}; keep the files inside it"),
        ("sub/../../secret.png", "'sub/../../secret.png' leads outside {data}; keep the files inside it"),
        ("link-out.png", "'link-out.png' leads through a symbolic link outside {data}; keep the files inside it"),
        (
            "dir-out/secret.png",
            "'dir-out/secret.png' leads through a symbolic link outside {data}; keep the files inside it",
        ),
        ("/etc/passwd", "'/etc/passwd' is an absolute path; give a path relative to {data}"),
        ("~/.ssh/id_rsa", "'~/.ssh/id_rsa' is an absolute path; give a path relative to {data}"),
        ("C:\\Windows\\win.ini", "'C:\\\\Windows\\\\win.ini' is an absolute path; give a path relative to {data}"),
        ("", "empty path"),
    ],
)
def test_paths_leading_out_are_refused_naming_file_row_and_column(tree: Path, value: str, message: str):
    with pytest.raises(InputError) as err:
        inside(tree / "data", value, file="f.csv", field="row 2, column file")
    assert str(err.value) == "f.csv: row 2, column file: " + message.format(data=tree / "data")


def test_a_replay_mapping_cannot_read_through_a_link_out(tree: Path):
    from t2iaudit.generators.replay import ReplayConfig, ReplayGenerator

    mapping = tree / "map.csv"
    mapping.write_text("file,prompt_id\nsub/a.png,p\nlink-out.png,q\n")
    with pytest.raises(InputError) as err:
        ReplayGenerator(ReplayConfig(folder=str(tree / "data"), mapping=str(mapping)))
    assert (err.value.file, err.value.field) == (str(mapping), "row 3, column file")
    assert "through a symbolic link outside" in err.value.message


def test_a_calibration_csv_cannot_read_through_a_link_out(tree: Path):
    from t2iaudit.calibration import calibration_images, load_calibration

    csv = tree / "data" / "truth.csv"
    csv.write_text("path,gender\nsub/a.png,female\ndir-out/secret.png,male\n")
    with pytest.raises(InputError) as err:
        calibration_images(load_calibration(csv))
    assert (err.value.file, err.value.field) == (str(csv), "row 3, column path")
    csv.write_text("path,gender\nsub/a.png,female\nlink-in.png,male\n")
    assert calibration_images(load_calibration(csv)) == [tree / "data/sub/a.png"] * 2


def test_a_label_file_cannot_name_an_image_through_a_link_out(tree: Path):
    from t2iaudit.labels.importer import import_labels

    labels = tree / "data" / "labels.csv"
    labels.write_text(
        "image_id,model_id,prompt_id,gender,image_path\na,m,p,female,sub/a.png\nb,m,p,male,link-out.png\n"
    )
    with pytest.raises(InputError) as err:
        import_labels(labels, tree / "run")
    assert (err.value.file, err.value.field) == (str(labels), "row 3, column image_path")
    assert not (tree / "run").exists()
