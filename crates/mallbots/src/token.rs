//! `mallbots token`: a development token signed with `AUTH_HS256_SECRET`, for curl, the
//! features and `busywork` against a mall that requires tokens.

use std::time::Duration;

use host::auth::{AuthConfig, Role};

/// What the token says.
#[derive(Debug, clap::Args)]
pub struct TokenArgs {
    /// The caller's role.
    #[arg(long, value_enum)]
    pub role: Role,
    /// The caller's id (`sub`): for a customer, its customer id.
    #[arg(long)]
    pub subject: String,
    /// How long it is valid (`30m`, `1h`, `24h`).
    #[arg(long, default_value = "1h", value_parser = host::parse_duration)]
    pub ttl: Duration,
    /// The secret (and the issuer and audience it should carry), as the mall reads them.
    #[command(flatten)]
    pub auth: AuthConfig,
}

/// Prints the token.
///
/// # Errors
/// No secret, a blank subject or a zero lifetime.
#[allow(clippy::print_stdout, reason = "the token is the command's answer")]
pub fn run(args: &TokenArgs) -> anyhow::Result<()> {
    anyhow::ensure!(
        !args.subject.trim().is_empty(),
        "--subject must not be blank"
    );
    anyhow::ensure!(!args.ttl.is_zero(), "--ttl must be longer than 0s");
    let minted = host::auth::mint(&args.auth, args.role, args.subject.trim(), args.ttl)?;
    println!("{}", minted.token);
    Ok(())
}
