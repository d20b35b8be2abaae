struct AppError;

#[trio::test]
async fn t() -> Result<(), AppError> {
    Ok(())
}
