//! Building a service's settings outside its own `main`: from its flags alone (built-in
//! defaults, for tests that must not depend on the environment they run in), or with the
//! `SALEBOARD_*` environment as the binary would (for `saleboard dev`).

use std::ffi::OsString;

/// Parses `T` from `args` (the first is the program name); with `environment` false every
/// flag's environment variable is ignored.
///
/// # Errors
/// When an argument (or, with `environment`, a variable) holds an invalid value.
pub fn parse<T: clap::Parser>(
    args: impl IntoIterator<Item = impl Into<OsString> + Clone>,
    environment: bool,
) -> Result<T, clap::Error> {
    let mut command = T::command();
    if !environment {
        command = command.mut_args(|arg| arg.env(clap::builder::Resettable::Reset));
    }
    let mut matches = command.try_get_matches_from(args)?;
    T::from_arg_matches_mut(&mut matches)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(clap::Parser, Debug)]
    struct Settings {
        #[arg(long, env = "SALEBOARD_CONFIG_TEST_LIMIT", default_value_t = 7)]
        limit: u32,
    }

    #[test]
    fn the_environment_is_read_only_when_asked() {
        // (Setting a variable is unsafe in edition 2024 and would race other tests, so this
        // checks the flag path; TestApp builds every service from built-in defaults.)
        let built_in: Settings = parse(["t"], false).expect("defaults");
        assert_eq!(built_in.limit, 7);
        let given: Settings = parse(["t", "--limit", "9"], false).expect("flag");
        assert_eq!(given.limit, 9);
        assert!(parse::<Settings>(["t", "--limit", "x"], true).is_err());
    }
}
