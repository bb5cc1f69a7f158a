import kinerja_rules


def test_all_is_sorted_and_complete() -> None:
    exported = kinerja_rules.__all__
    assert exported == sorted(exported)
    public = {name for name in vars(kinerja_rules) if not name.startswith("_")}
    modules = {name for name in public if type(getattr(kinerja_rules, name)).__name__ == "module"}
    assert set(exported) == public - modules
