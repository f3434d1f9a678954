//! The member list of a room: each member's role and verification state, the actions the
//! viewer's role allows (remove, ban, change role), and safety-number verification.

use common::identity::MemberKeys;
use common::membership::{Role, RoomId};
use common::trust::{safety_number_of, PinCheck};
use leptos::prelude::*;

use crate::chat::Chat;
use crate::components::confirm::ConfirmButton;

/// One member as the list shows them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberLine {
    /// Username.
    pub username: String,
    /// Role in the room.
    pub role: Role,
    /// Keys the log records.
    pub keys: MemberKeys,
}

fn verification_label(check: PinCheck) -> (&'static str, &'static str) {
    match check {
        PinCheck::Matches { verified: true } => ("verified", "✓ verified"),
        PinCheck::Matches { verified: false } | PinCheck::New => ("unverified", "not verified"),
        PinCheck::Changed { .. } => ("changed", "⚠ key changed"),
    }
}

/// Members with their roles, verification state and actions.
#[component]
pub fn MemberList(
    /// The room.
    room_id: RoomId,
    /// Its current members, from the replayed log.
    members: Vec<MemberLine>,
    /// The viewer's role, `None` once removed.
    my_role: Option<Role>,
    /// The viewer's username.
    me: String,
) -> impl IntoView {
    let chat = expect_context::<Chat>();
    let verifying = RwSignal::new(None::<String>);
    let error = RwSignal::new(None::<String>);
    let run = move |task: std::pin::Pin<
        Box<dyn std::future::Future<Output = Result<(), crate::chat::ChatError>>>,
    >| {
        error.set(None);
        leptos::task::spawn_local(async move {
            if let Err(failure) = task.await {
                error.try_set(Some(failure.to_string()));
            }
        });
    };
    let my_keys = chat
        .session
        .with_untracked(|session| session.as_ref().map(|s| s.keys()));
    let lines = members
        .into_iter()
        .map(|member| {
            let is_me = member.username == me;
            let can_remove = my_role.is_some_and(|role| role >= Role::Admin && member.role < role) && !is_me;
            let can_set_role = my_role == Some(Role::Owner) && !is_me;
            let name = member.username.clone();
            let keys = member.keys;
            let check_memo = Memo::new(move |_| chat.pin_check(&name, &keys));
            let check = move || check_memo.get();
            let (name_remove, name_ban, name_role, name_verify) =
                (member.username.clone(), member.username.clone(), member.username.clone(), member.username.clone());
            let target_role = if member.role == Role::Admin { Role::Member } else { Role::Admin };
            view! {
                <li data-testid="member" data-username=member.username.clone() class="member-line">
                    <div class="member-main">
                        <span class="member-name">{member.username.clone()}</span>
                        <span class=format!("role role-{}", member.role.as_str())>{member.role.as_str()}</span>
                        {(!is_me).then(|| view! {
                            <span
                                class=move || format!("verification {}", verification_label(check()).0)
                                data-testid="verification-state"
                            >
                                {move || verification_label(check()).1}
                            </span>
                        })}
                    </div>
                    <div class="member-actions">
                        {(!is_me && my_keys.is_some()).then(|| view! {
                            <button class="link" data-testid="verify-button" on:click=move |_| {
                                let name = name_verify.clone();
                                verifying.update(|current| {
                                    *current = if current.as_deref() == Some(name.as_str()) { None } else { Some(name) };
                                });
                            }>"verify"</button>
                        })}
                        {can_set_role.then(|| view! {
                            <button
                                class="link"
                                data-testid=if target_role == Role::Admin { "make-admin-button" } else { "make-member-button" }
                                on:click=move |_| {
                                    let name = name_role.clone();
                                    run(Box::pin(async move { chat.set_role(room_id, &name, target_role).await }));
                                }
                            >
                                {if target_role == Role::Admin { "make admin" } else { "make member" }}
                            </button>
                        })}
                        {can_remove.then(|| view! {
                            <ConfirmButton label="Remove" class="link" testid="remove-member-button"
                                question=format!("Remove {name_remove} from the room? A new key epoch starts.")
                                on_confirm=Callback::new(move |()| {
                                    let name = name_remove.clone();
                                    run(Box::pin(async move { chat.remove_member(room_id, &name, false).await }));
                                }) />
                            <ConfirmButton label="Ban" class="link danger" testid="ban-member-button"
                                question=format!("Ban {name_ban}? They are removed and cannot ask to join again.")
                                on_confirm=Callback::new(move |()| {
                                    let name = name_ban.clone();
                                    run(Box::pin(async move { chat.remove_member(room_id, &name, true).await }));
                                }) />
                        })}
                    </div>
                    {
                        let name = member.username.clone();
                        let shown_for = member.username.clone();
                        let me = me.clone();
                        move || (verifying.get().as_deref() == Some(shown_for.as_str())).then(|| {
                            let number = my_keys
                                .map(|mine| safety_number_of(&me, &mine, &name, &keys))
                                .unwrap_or_default();
                            let name = name.clone();
                            view! {
                                <div class="verify-panel">
                                    <p>{format!("Compare this safety number with {name}, in person or on a call. If both screens show the same digits, mark {name} verified.")}</p>
                                    <code data-testid="safety-number">{number}</code>
                                    <button data-testid="mark-verified-button" on:click=move |_| {
                                        let name = name.clone();
                                        run(Box::pin(async move { chat.set_verified(&name, &keys, true).await }));
                                    }>"Mark verified"</button>
                                </div>
                            }
                        })
                    }
                </li>
            }
        })
        .collect_view();
    view! {
        <ul data-testid="member-list">{lines}</ul>
        <Show when=move || error.get().is_some()>
            <p class="error" role="alert" data-testid="member-error">{move || error.get()}</p>
        </Show>
    }
}
