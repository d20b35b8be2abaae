#[trio::test]
fn t() {}

fn main() {}
