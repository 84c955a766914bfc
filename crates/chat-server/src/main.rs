//! `message-service`: see `chat_server` and the README.

use std::process::ExitCode;

use chat_server::cli::{Cli, Command};
use chat_server::settings::{Profile, Settings};
use chat_server::startup::Application;
use clap::Parser as _;

#[actix_web::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            // The whole chain: what failed, and every cause under it down to the driver's.
            eprintln!(
                "message-service: {}",
                chat_domain::Report::of(error.as_ref())
            );
            ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> Result<(), Box<dyn std::error::Error>> {
    let profile: Profile = cli.profile.parse()?;
    let settings = Settings::load(&cli.config_dir, profile)?;
    match cli.command.unwrap_or(Command::Serve) {
        Command::Serve => {
            chat_server::telemetry::init(&settings.log);
            tracing::info!(profile = %profile, "starting");
            Application::build(settings)
                .await?
                .run_until_stopped()
                .await?;
        }
        Command::Token { user, ttl_secs } => {
            let user = chat_domain::UserId::parse(&user, "--user")?;
            let verifier = chat_server::auth::TokenVerifier::new(&settings.auth);
            println!("{}", verifier.mint(user, ttl_secs)?);
        }
        Command::Keygen => println!("{}", chat_server::wiring::generate_content_key()?),
        Command::Migrate => {
            chat_server::telemetry::init(&settings.log);
            chat_server::wiring::migrate(&settings).await?;
        }
    }
    Ok(())
}
