#[trio::test(autojump)]
async fn sleeps_an_hour() -> trio::Result<()> {
    trio::sleep(3600.0).await
}
