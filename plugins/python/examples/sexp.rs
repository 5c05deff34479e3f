fn main() {
    let path = std::env::args().nth(1).unwrap();
    let text = std::fs::read_to_string(&path).unwrap();
    let f = previewd_plugin_python::SourceFile::parse(path, text).unwrap();
    println!("{}", f.root().to_sexp());
}
