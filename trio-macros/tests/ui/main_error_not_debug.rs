struct AppError;

#[trio::main]
async fn main() -> Result<(), AppError> {
    Ok(())
}
