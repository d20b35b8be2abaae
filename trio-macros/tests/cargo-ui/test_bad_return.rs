#[trio::test]
async fn t() -> Option<()> {
    None
}
