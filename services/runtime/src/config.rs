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

    /// A setting read from `PATH`, which every process has and which is never a number: read,
    /// it fails to parse; ignored, the default stands. (Setting a variable of our own would be
    /// unsafe in edition 2024 and race other tests.)
    #[derive(clap::Parser, Debug)]
    struct Settings {
        #[arg(long, env = "PATH", default_value_t = 7)]
        limit: u32,
    }

    #[test]
    fn the_environment_is_read_only_when_asked() {
        assert!(
            std::env::var_os("PATH").is_some_and(|p| p.to_string_lossy().parse::<u32>().is_err()),
            "the test needs a non-numeric PATH"
        );
        let built_in: Settings = parse(["t"], false).expect("the environment is ignored");
        assert_eq!(built_in.limit, 7);
        assert!(
            parse::<Settings>(["t"], true).is_err(),
            "the environment is read: PATH is not a number"
        );
        let given: Settings = parse(["t", "--limit", "9"], true).expect("a flag wins");
        assert_eq!(given.limit, 9);
    }
}
