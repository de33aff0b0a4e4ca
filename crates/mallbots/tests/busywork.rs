//! `busywork` against the whole mall in this process, on each backend: every order it checks
//! out must complete, with no failed request.

use std::time::Duration;

use clap::Parser as _;
use db::Backend;
use mallbots::{Cli, Command, busywork};

db::backend_tests!(every_simulated_order_completes);

async fn every_simulated_order_completes(backend: Backend) {
    let app = testkit::spawn_app(&["all"], backend).await;
    let url = app.url("");
    let cli = Cli::try_parse_from([
        "mallbots",
        "busywork",
        "--url",
        &url,
        "--clients",
        "4",
        "--duration",
        "3s",
        "--seed",
        "7",
    ])
    .expect("busywork's flags parse");
    let Some(Command::Busywork(args)) = cli.command else {
        panic!("not the busywork command")
    };
    let summary = busywork::run(&args).await.expect("the mall is set up");
    assert!(summary.orders_started > 0, "{summary}");
    assert_eq!(
        summary.orders_completed, summary.orders_started,
        "{summary}"
    );
    assert_eq!(summary.orders_lost, 0, "{summary}");
    assert!(summary.errors.is_empty(), "{summary}");
    let approved = &summary.checkout_to_approved_ms;
    assert_eq!(approved.count as u64, summary.orders_completed);
    assert!(approved.p50 <= approved.p99 && approved.p99 <= approved.max);
    assert!(summary.seconds >= Duration::from_secs(3).as_secs_f64());
}

#[test]
fn bad_busywork_settings_are_refused() {
    for bad in [
        &["mallbots", "busywork", "--rate", "-1"][..],
        &["mallbots", "busywork", "--clients", "0"],
        &["mallbots", "busywork", "--duration", "soon"],
    ] {
        assert!(Cli::try_parse_from(bad).is_err(), "{bad:?} was accepted");
    }
}
