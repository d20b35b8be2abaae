#[trio::main]
fn main() {}
