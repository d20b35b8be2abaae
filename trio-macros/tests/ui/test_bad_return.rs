#[trio::test]
async fn t() -> Option<()> {
    None
}

fn main() {}
