//! The state machine, given/when/then, on a saga shaped like the book's create-order saga.

use serde::{Deserialize, Serialize};

use crate::{Command, Next, Reply, Saga, Status, Step, testing::given};

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub(crate) struct Order {
    pub(crate) id: String,
    pub(crate) list: String,
}

fn command(name: &'static str) -> impl Fn(&Order) -> Command {
    move |order| {
        Command::new(
            "mallbots.test.commands",
            name,
            &proto::ordering::RejectOrder {
                id: order.id.clone(),
            },
        )
    }
}

fn keep_list_id(order: &mut Order, reply: &Reply) -> Result<(), String> {
    let list =
        <proto::depot::CreatedShoppingList as prost::Message>::decode(reply.payload.as_slice())
            .map_err(|e| e.to_string())?;
    order.list = list.id;
    Ok(())
}

macro_rules! send {
    ($name:literal) => {
        |order: &Order| command($name)(order)
    };
}

/// reject* / authorize / reserve (release*) / charge / approve — * = compensation.
pub(crate) fn create_order() -> Saga<Order> {
    Saga::new("test.CreateOrder", "mallbots.test.replies")
        .step(Step::compensation_only(send!("reject")))
        .step(Step::act(send!("authorize")))
        .step(
            Step::act(send!("reserve"))
                .on_reply("reserved", keep_list_id)
                .compensate(send!("release")),
        )
        .step(Step::act(send!("charge")))
        .step(Step::act(send!("approve")))
        .max_compensation_attempts(3)
}

fn order() -> Order {
    Order {
        id: "o1".into(),
        list: String::new(),
    }
}

fn reserved(id: &str, success: bool) -> Reply {
    let payload =
        prost::Message::encode_to_vec(&proto::depot::CreatedShoppingList { id: id.into() });
    Reply {
        name: "reserved".into(),
        success,
        payload,
    }
}

#[test]
fn every_step_succeeding_completes_the_saga() {
    let saga = create_order();
    let done = given(&saga, order())
        .then_sent(["authorize"])
        .reply(true)
        .reply_with(reserved("list-7", true))
        .reply(true)
        .reply(true)
        .then_sent(["authorize", "reserve", "charge", "approve"])
        .then_status(Status::Completed)
        .then_next(&Next::Stop);
    assert_eq!(done.instance().data.list, "list-7");
}

#[test]
fn a_failed_first_action_only_rejects() {
    let saga = create_order();
    let _ = given(&saga, order())
        .reply(false)
        .then_sent(["authorize", "reject"])
        .reply(true)
        .then_status(Status::Compensated);
}

#[test]
fn a_failed_reservation_is_not_released() {
    let saga = create_order();
    let scenario = given(&saga, order())
        .reply(true)
        .reply_with(reserved("list-7", false));
    // The failure's payload never reaches the success handler.
    assert_eq!(scenario.instance().data.list, "");
    let _ = scenario
        .then_sent(["authorize", "reserve", "reject"])
        .reply(true)
        .then_status(Status::Compensated);
}

#[test]
fn a_failed_charge_releases_then_rejects() {
    let saga = create_order();
    let _ = given(&saga, order())
        .reply(true)
        .reply_with(reserved("list-7", true))
        .reply(false)
        .then_sent(["authorize", "reserve", "charge", "release"])
        .reply(true)
        .then_sent(["authorize", "reserve", "charge", "release", "reject"])
        .reply(true)
        .then_status(Status::Compensated);
}

#[test]
fn a_failed_approval_compensates_in_reverse_order() {
    let saga = create_order();
    let _ = given(&saga, order())
        .reply(true)
        .reply_with(reserved("list-7", true))
        .reply(true)
        .reply(false)
        .then_sent(["authorize", "reserve", "charge", "approve", "release"])
        .reply(true)
        .then_sent([
            "authorize",
            "reserve",
            "charge",
            "approve",
            "release",
            "reject",
        ])
        .reply(true)
        .then_status(Status::Compensated);
}

#[test]
fn a_step_without_a_reply_in_time_compensates() {
    let saga = create_order();
    let _ = given(&saga, order())
        .reply(true)
        .reply_with(reserved("list-7", true))
        .timeout()
        .then_sent(["authorize", "reserve", "charge", "release"])
        .reply(true)
        .then_sent(["authorize", "reserve", "charge", "release", "reject"])
        .reply(true)
        .then_status(Status::Compensated);
}

#[test]
fn a_failing_compensation_is_retried_then_parked() {
    let saga = create_order();
    let _ = given(&saga, order())
        .reply(false)
        .then_sent(["authorize", "reject"])
        .reply(false)
        .then_next(&Next::RetryLater)
        .retry()
        .then_sent(["authorize", "reject", "reject"])
        .reply(false)
        .retry()
        .reply(false)
        .then_sent(["authorize", "reject", "reject", "reject"])
        .then_status(Status::CompensationFailed)
        .then_next(&Next::Stop);
}

#[test]
fn a_compensation_that_recovers_on_retry_finishes() {
    let saga = create_order();
    let _ = given(&saga, order())
        .reply(false)
        .reply(false)
        .retry()
        .reply(true)
        .then_status(Status::Compensated);
}

#[test]
fn stale_and_late_replies_are_ignored() {
    let saga = create_order();
    let scenario = given(&saga, order()).reply(true);
    // A second reply to step 1 ("authorize") arrives after the saga moved on to step 2.
    let scenario = scenario
        .reply_ignored(false, Some("1"))
        .then_sent(["authorize", "reserve"]);
    // Replies to a finished saga change nothing.
    let scenario = scenario
        .reply(false)
        .reply(true)
        .then_status(Status::Compensated);
    let _ = scenario
        .reply_ignored(false, Some("c0"))
        .then_status(Status::Compensated);
}

#[test]
fn a_late_failure_of_an_earlier_compensation_try_is_ignored() {
    let saga = create_order();
    let scenario = given(&saga, order()).reply(false).reply(false).retry();
    // The first try's marker was "c0"; the retry's is "c0.1".
    let _ = scenario
        .reply_ignored(false, Some("c0"))
        .reply(true)
        .then_status(Status::Compensated);
}

#[test]
fn statuses_round_trip_through_their_names() {
    for status in [
        Status::Running,
        Status::Completed,
        Status::Compensated,
        Status::CompensationFailed,
    ] {
        assert_eq!(Status::parse(status.as_str()), Some(status));
    }
    assert_eq!(Status::CompensationFailed.as_str(), "compensation_failed");
}
