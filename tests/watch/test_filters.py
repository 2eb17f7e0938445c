from skylab_watch.watch.filters import DEFAULT_EXCLUDE, is_candidate


def test_plain_photo_is_a_candidate():
    assert is_candidate("shoot1/IMG_0001.jpg", (), DEFAULT_EXCLUDE)


def test_hidden_file_and_file_in_hidden_folder_are_ignored():
    assert not is_candidate(".DS_Store", (), DEFAULT_EXCLUDE)
    assert not is_candidate(".hidden/x.jpg", (), DEFAULT_EXCLUDE)
    assert not is_candidate("a/.sync/x.jpg", (), DEFAULT_EXCLUDE)


def test_temporary_and_partial_downloads_are_ignored():
    for name in ("x.jpg.part", "x.jpg~", "x.tmp", "x.jpg.crdownload", "a/B.PART"):
        assert not is_candidate(name, (), DEFAULT_EXCLUDE), name


def test_include_matches_basename_case_insensitively():
    include = ("*.jpg", "*.png")
    assert is_candidate("a/IMG_1.JPG", include, DEFAULT_EXCLUDE)
    assert not is_candidate("a/notes.txt", include, DEFAULT_EXCLUDE)
    # include applies to the file name, not to folder names
    assert not is_candidate("photos.jpg/notes.txt", include, DEFAULT_EXCLUDE)


def test_nested_excluded_folder_by_custom_pattern():
    exclude = (*DEFAULT_EXCLUDE, "rejects", "Thumbs*")
    assert not is_candidate("day1/rejects/x.jpg", (), exclude)
    assert not is_candidate("day1/REJECTS/deeper/x.jpg", (), exclude)
    assert is_candidate("day1/keepers/x.jpg", (), exclude)


def test_empty_path_is_not_a_candidate():
    assert not is_candidate("", (), DEFAULT_EXCLUDE)
