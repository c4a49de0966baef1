//! nvme-monitor entry point: parse the command line, then hand over to the daemon, `status` or
//! `nbft show`.

use nvme_monitor::{cli, daemon, log, nbft_show, status};

fn main() {
    let code = match cli::parse(std::env::args_os().skip(1)) {
        Ok(cli::Command::Help) => {
            print!("{}", cli::USAGE);
            cli::EXIT_OK
        }
        Ok(cli::Command::Version) => {
            println!("nvme-monitor {}", env!("CARGO_PKG_VERSION"));
            cli::EXIT_OK
        }
        Ok(cli::Command::Run(args)) => {
            log::set_level(args.log_level());
            if args.log == log::Target::Kmsg {
                if let Err(e) = log::use_kmsg(&args.devfs) {
                    nvme_monitor::warn!("{e}; logging to stderr");
                }
            }
            daemon::run(*args)
        }
        Ok(cli::Command::Status(args)) => status::run(&args),
        Ok(cli::Command::Nbft(args)) => nbft_show::run(&args),
        Err(e) => {
            // Not through the logger, so scrubbed here: nvme-cli's `-S KEY` is our --silent,
            // and the key would be quoted as an unexpected argument.
            eprintln!(
                "nvme-monitor: error: {}",
                nvme_monitor::secret::scrub(&e.to_string())
            );
            eprintln!("Try 'nvme-monitor --help' for more information.");
            cli::EXIT_USAGE
        }
    };
    std::process::exit(code);
}
