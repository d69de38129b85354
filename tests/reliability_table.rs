//! Every test named in `docs/RELIABILITY.md` exists, so the table cannot promise a test that is
//! gone.

#[test]
fn reliability_table_names_existing_tests() {
    let root = env!("CARGO_MANIFEST_DIR");
    let table = std::fs::read_to_string(format!("{root}/docs/RELIABILITY.md")).unwrap();
    let mut named = 0;
    for cell in table.split('`') {
        let Some((file, test)) = cell.split_once("::") else { continue };
        if !file.chars().all(|c| c.is_ascii_lowercase() || c == '_') || !test.chars().all(|c| c.is_ascii_lowercase() || c == '_' || c == ':') {
            continue;
        }
        // `file::test` names tests/<file>.rs; `module::path::test` names a unit test in src/.
        let (path, name) = match test.rsplit_once("::") {
            Some((module, name)) => {
                let module = module.strip_suffix("::tests").unwrap_or(module);
                (format!("{root}/src/{file}/{}.rs", module.replace("::", "/")), name)
            }
            None => (format!("{root}/tests/{file}.rs"), test),
        };
        let source = std::fs::read_to_string(&path).unwrap_or_else(|_| std::fs::read_to_string(path.replace(".rs", "/mod.rs")).unwrap_or_else(|error| panic!("{cell}: {path}: {error}")));
        assert!(source.contains(&format!("fn {name}(")), "{cell}: no test `{name}` in {path}");
        named += 1;
    }
    assert!(named > 30, "the table names only {named} tests");
}
