#[trio::wchan]
fn f() {}

fn main() {}
