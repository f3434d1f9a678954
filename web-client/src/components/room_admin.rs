//! Room administration panel: invites, join requests, add by username, settings, key rotation,
//! clearing history, deleting (owner) and leaving (everyone else).

use common::api::PendingJoinRequest;
use common::membership::{HistoryPolicy, Role, RoomId, RoomPolicy, RotationSchedule};
use leptos::prelude::*;

use crate::chat::{Chat, ChatError};
use crate::components::confirm::ConfirmButton;
use crate::components::deferred::split_point;

type Task = std::pin::Pin<Box<dyn std::future::Future<Output = Result<(), ChatError>>>>;

/// Runs `task`, showing its error in `error`.
fn run(error: RwSignal<Option<String>>, task: Task) {
    error.set(None);
    leptos::task::spawn_local(async move {
        if let Err(failure) = task.await {
            error.try_set(Some(failure.to_string()));
        }
    });
}

split_point! {
    /// [`RoomAdmin`] as a split point (see [`crate::components::deferred`]).
    pub fn room_admin(
        room_id: RoomId,
        my_role: Role,
        policy: RoomPolicy,
        schedule: RotationSchedule,
        requests: Vec<PendingJoinRequest>,
    ) {
        view! { <RoomAdmin room_id my_role policy schedule requests /> }.into_any()
    }
}

/// The admin tools of a room, by the viewer's role.
#[component]
pub fn RoomAdmin(
    /// The room.
    room_id: RoomId,
    /// The viewer's role.
    my_role: Role,
    /// The room's current policy, from the log.
    policy: RoomPolicy,
    /// When the room key is rotated on schedule, from the log.
    schedule: RotationSchedule,
    /// Pending join requests (loaded for owners and admins).
    requests: Vec<PendingJoinRequest>,
) -> impl IntoView {
    let chat = expect_context::<Chat>();
    let error = RwSignal::new(None::<String>);
    let is_admin = my_role >= Role::Admin;
    view! {
        {is_admin.then(|| view! {
            <AddByUsername room_id=room_id error=error />
            <JoinRequests room_id=room_id requests=requests error=error />
            <Invite room_id=room_id error=error />
            <NameAndTopic room_id=room_id error=error />
            <Settings room_id=room_id policy=policy schedule=schedule error=error />
            <div class="admin-buttons">
                <button class="secondary" data-testid="rotate-key-button"
                    on:click=move |_| run(error, Box::pin(async move { chat.rotate_room(room_id).await }))>
                    "Rotate key"
                </button>
                <ConfirmButton label="Clear history" class="secondary" testid="clear-history-button"
                    question="Clear the history for everyone? Messages and attachments so far are deleted from the server."
                    on_confirm=Callback::new(move |()| run(error, Box::pin(async move { chat.clear_history(room_id).await }))) />
            </div>
        })}
        <div class="admin-buttons">
            {if my_role == Role::Owner {
                view! {
                    <ConfirmButton label="Delete room" class="danger" testid="delete-room-button"
                        question="Delete this room for every member, with all of its messages?"
                        on_confirm=Callback::new(move |()| run(error, Box::pin(async move { chat.delete_room(room_id).await }))) />
                }.into_any()
            } else {
                view! {
                    <ConfirmButton label="Leave room" class="secondary" testid="leave-room-button"
                        question="Leave this room? You will need to be added again to come back."
                        on_confirm=Callback::new(move |()| run(error, Box::pin(async move { chat.leave(room_id).await }))) />
                }.into_any()
            }}
        </div>
        <Show when=move || error.get().is_some()>
            <p class="error" role="alert" data-testid="admin-error">{move || error.get()}</p>
        </Show>
    }
}

/// Add a member by username.
#[component]
fn AddByUsername(room_id: RoomId, error: RwSignal<Option<String>>) -> impl IntoView {
    let chat = expect_context::<Chat>();
    let username = RwSignal::new(String::new());
    let add = move || {
        let name = username.get_untracked();
        if name.trim().is_empty() {
            return;
        }
        run(
            error,
            Box::pin(async move {
                chat.add_member(room_id, &name).await?;
                username.try_set(String::new());
                Ok(())
            }),
        );
    };
    view! {
        <form class="add-member" on:submit=move |event| {
            event.prevent_default();
            add();
        }>
            <input
                data-testid="member-username-input"
                aria-label="username to add"
                type="text"
                placeholder="Add by username"
                autocapitalize="none"
                prop:value=move || username.get()
                on:input=move |event| username.set(event_target_value(&event))
            />
            <button data-testid="add-member-button" type="submit">"Add"</button>
        </form>
    }
}

/// Pending join requests with approve and refuse buttons.
#[component]
fn JoinRequests(
    room_id: RoomId,
    requests: Vec<PendingJoinRequest>,
    error: RwSignal<Option<String>>,
) -> impl IntoView {
    let chat = expect_context::<Chat>();
    (!requests.is_empty()).then(|| view! {
        <h3>"Join requests"</h3>
        <ul class="join-requests">
            {requests.into_iter().map(|request| {
                let (approve_name, refuse_name) = (request.username.clone(), request.username.clone());
                view! {
                    <li data-testid="join-request" data-username=request.username.clone()>
                        <span title=format!("fingerprint {}", request.identity.fingerprint())>{request.username.clone()}</span>
                        <button data-testid="approve-request-button" on:click=move |_| {
                            let name = approve_name.clone();
                            run(error, Box::pin(async move { chat.approve_join(room_id, &name).await }));
                        }>"Approve"</button>
                        <button class="secondary" data-testid="refuse-request-button" on:click=move |_| {
                            let name = refuse_name.clone();
                            run(error, Box::pin(async move { chat.refuse_join(room_id, &name).await }));
                        }>"Refuse"</button>
                    </li>
                }
            }).collect_view()}
        </ul>
    })
}

/// Create an invite link with an expiry and a maximum number of uses.
#[component]
fn Invite(room_id: RoomId, error: RwSignal<Option<String>>) -> impl IntoView {
    let chat = expect_context::<Chat>();
    let hours = RwSignal::new("24".to_owned());
    let uses = RwSignal::new("5".to_owned());
    let link = RwSignal::new(None::<String>);
    let create = move |_| {
        let hours = hours.get_untracked().trim().parse::<u64>().unwrap_or(24);
        let uses = uses.get_untracked().trim().parse::<u32>().unwrap_or(1);
        run(
            error,
            Box::pin(async move {
                let created = chat.create_invite(room_id, hours, uses).await?;
                link.try_set(Some(created));
                Ok(())
            }),
        );
    };
    view! {
        <h3>"Invite link"</h3>
        <div class="invite-form">
            <label>"Valid for (hours)"
                <input data-testid="invite-hours-input" type="number" min="1"
                    prop:value=move || hours.get() on:input=move |event| hours.set(event_target_value(&event)) />
            </label>
            <label>"Uses"
                <input data-testid="invite-max-uses-input" type="number" min="1"
                    prop:value=move || uses.get() on:input=move |event| uses.set(event_target_value(&event)) />
            </label>
            <button data-testid="create-invite-button" on:click=create>"Create link"</button>
        </div>
        <Show when=move || link.get().is_some()>
            <input class="invite-link" data-testid="invite-link" readonly prop:value=move || link.get().unwrap_or_default() />
            <p class="hint">"Share this link privately: anyone with it can ask to join until it expires or is used up."</p>
        </Show>
    }
}

/// History visibility, the per-member message rate, the attachment size and the rotation
/// schedule. Saving appends a policy entry and a schedule entry, each only when it changed.
#[component]
fn Settings(
    room_id: RoomId,
    policy: RoomPolicy,
    schedule: RotationSchedule,
    error: RwSignal<Option<String>>,
) -> impl IntoView {
    let chat = expect_context::<Chat>();
    let history = RwSignal::new(match policy.history {
        HistoryPolicy::SinceJoining => "since_joining".to_owned(),
        HistoryPolicy::FullHistory => "full_history".to_owned(),
    });
    let rate = RwSignal::new(policy.messages_per_minute.to_string());
    let max_mib = RwSignal::new((policy.max_attachment_bytes / (1024 * 1024)).to_string());
    let rotation_days = RwSignal::new(format_days(schedule.max_age_ms));
    let rotation_messages = RwSignal::new(schedule.max_messages.to_string());
    let save = move |_| {
        let mut updated = policy;
        updated.history = if history.get_untracked() == "full_history" {
            HistoryPolicy::FullHistory
        } else {
            HistoryPolicy::SinceJoining
        };
        updated.messages_per_minute = rate
            .get_untracked()
            .trim()
            .parse()
            .unwrap_or(policy.messages_per_minute);
        updated.max_attachment_bytes = max_mib
            .get_untracked()
            .trim()
            .parse::<u64>()
            .map(|mib| mib * 1024 * 1024)
            .unwrap_or(policy.max_attachment_bytes);
        let new_schedule = parse_schedule(
            &rotation_days.get_untracked(),
            &rotation_messages.get_untracked(),
        );
        run(
            error,
            Box::pin(async move {
                let new_schedule =
                    new_schedule.map_err(|message| ChatError::Other(message.into()))?;
                if updated != policy {
                    chat.set_policy(room_id, updated).await?;
                }
                if new_schedule != schedule {
                    chat.set_rotation_schedule(room_id, new_schedule).await?;
                }
                Ok(())
            }),
        );
    };
    view! {
        <h3>"Settings"</h3>
        <div class="settings">
            <label>"New members see"
                <select data-testid="history-policy-select" prop:value=move || history.get()
                    on:change=move |event| history.set(event_target_value(&event))>
                    <option value="since_joining">"messages since they joined"</option>
                    <option value="full_history">"the full history"</option>
                </select>
            </label>
            <label>"Messages per minute per member (0 = no limit)"
                <input data-testid="rate-limit-input" type="number" min="0"
                    prop:value=move || rate.get() on:input=move |event| rate.set(event_target_value(&event)) />
            </label>
            <label>"Largest attachment (MiB)"
                <input data-testid="max-attachment-input" type="number" min="0"
                    prop:value=move || max_mib.get() on:input=move |event| max_mib.set(event_target_value(&event)) />
            </label>
            <label>"Rotate the room key every (days)"
                <input data-testid="rotation-days-input" type="number" min="0.05" max="365" step="any"
                    prop:value=move || rotation_days.get() on:input=move |event| rotation_days.set(event_target_value(&event)) />
            </label>
            <label>"or after this many messages"
                <input data-testid="rotation-messages-input" type="number" min="10" max="1000000"
                    prop:value=move || rotation_messages.get() on:input=move |event| rotation_messages.set(event_target_value(&event)) />
            </label>
            <button data-testid="save-settings-button" on:click=save>"Save settings"</button>
        </div>
    }
}

/// A rotation age in days, as the settings form shows it: whole days without decimals.
fn format_days(max_age_ms: u64) -> String {
    let decimals = if max_age_ms.is_multiple_of(RotationSchedule::DAY_MS) {
        0
    } else {
        2
    };
    crate::decimal::fixed(
        max_age_ms as f64 / RotationSchedule::DAY_MS as f64,
        decimals,
    )
}

/// The schedule the settings form describes, or why it is out of bounds.
fn parse_schedule(days: &str, messages: &str) -> Result<RotationSchedule, &'static str> {
    // Days as a plain decimal ("7", "0.5"), read without floats; a sign or an exponent is
    // refused here, a zero or too long age by the bounds check below.
    let max_age_ms = crate::decimal::scaled(days, RotationSchedule::DAY_MS)
        .ok_or("rotation age must be a number of days")?;
    let max_messages: u32 = messages
        .trim()
        .parse()
        .map_err(|_| "rotation message count must be a whole number")?;
    let schedule = RotationSchedule {
        max_age_ms,
        max_messages,
    };
    schedule.validate()?;
    Ok(schedule)
}

/// Rename the room or change its topic; both are encrypted under the current room key.
#[component]
fn NameAndTopic(room_id: RoomId, error: RwSignal<Option<String>>) -> impl IntoView {
    let chat = expect_context::<Chat>();
    let current = chat
        .rooms
        .with_untracked(|rooms| rooms.get(&room_id).and_then(|view| view.metadata.clone()))
        .unwrap_or_default();
    let direct = current.direct;
    let name = RwSignal::new(current.name);
    let topic = RwSignal::new(current.topic);
    let save = move |_| {
        let metadata = common::room_key::RoomMetadata {
            name: name.get_untracked().trim().to_owned(),
            topic: topic.get_untracked().trim().to_owned(),
            direct,
        };
        run(
            error,
            Box::pin(async move { chat.set_metadata(room_id, metadata).await }),
        );
    };
    view! {
        <h3>"Name and topic"</h3>
        <div class="settings">
            {(!direct).then(|| view! {
                <label>"Name"
                    <input data-testid="room-rename-input" type="text" maxlength="100"
                        prop:value=move || name.get() on:input=move |event| name.set(event_target_value(&event)) />
                </label>
            })}
            <label>"Topic"
                <input data-testid="room-topic-input" type="text" maxlength="500"
                    prop:value=move || topic.get() on:input=move |event| topic.set(event_target_value(&event)) />
            </label>
            <button data-testid="save-metadata-button" on:click=save>"Save name and topic"</button>
        </div>
    }
}
