//! The root supervisor: the linked parent of every SessionActor. It starts them, and when one
//! stops — ended, expired or failed — it forgets it in the session table.

use std::collections::HashMap;
use std::sync::Arc;

use ractor::{Actor, ActorId, ActorProcessingErr, ActorRef, RpcReplyPort, SupervisionEvent};
use tracing::{debug, warn};

use super::actor::{SessionActor, SessionArgs};
use super::msg::SessionMsg;
use super::table::SessionTable;

pub(super) struct SessionSupervisor;

pub(super) enum SupervisorMsg {
    /// Start a session as a linked child.
    Start(
        Box<SessionArgs>,
        RpcReplyPort<Result<ActorRef<SessionMsg>, String>>,
    ),
}

pub(super) struct SupervisorState {
    table: Arc<SessionTable>,
    /// Live children: actor → session id.
    children: HashMap<ActorId, Arc<str>>,
}

impl Actor for SessionSupervisor {
    type Msg = SupervisorMsg;
    type State = SupervisorState;
    type Arguments = Arc<SessionTable>;

    async fn pre_start(
        &self,
        _myself: ActorRef<SupervisorMsg>,
        table: Arc<SessionTable>,
    ) -> Result<SupervisorState, ActorProcessingErr> {
        Ok(SupervisorState {
            table,
            children: HashMap::new(),
        })
    }

    async fn handle(
        &self,
        myself: ActorRef<SupervisorMsg>,
        msg: SupervisorMsg,
        st: &mut SupervisorState,
    ) -> Result<(), ActorProcessingErr> {
        match msg {
            SupervisorMsg::Start(args, reply) => {
                let id = args.id.clone();
                let started =
                    Actor::spawn_linked(None, SessionActor, *args, myself.get_cell()).await;
                let answer = match started {
                    Ok((actor, _)) => {
                        st.children.insert(actor.get_id(), id);
                        Ok(actor)
                    }
                    Err(e) => Err(e.to_string()),
                };
                if !reply.is_closed() {
                    let _ = reply.send(answer);
                }
            }
        }
        Ok(())
    }

    async fn handle_supervisor_evt(
        &self,
        _myself: ActorRef<SupervisorMsg>,
        evt: SupervisionEvent,
        st: &mut SupervisorState,
    ) -> Result<(), ActorProcessingErr> {
        let (cell, failure) = match evt {
            SupervisionEvent::ActorTerminated(cell, _, _) => (cell, None),
            SupervisionEvent::ActorFailed(cell, err) => (cell, Some(err.to_string())),
            _ => return Ok(()),
        };
        let Some(id) = st.children.remove(&cell.get_id()) else {
            return Ok(());
        };
        match failure {
            // A session that fails is not restarted: its client re-initializes on the 404.
            Some(error) => warn!(session = %id, %error, "Session failed"),
            None => debug!(session = %id, "Session stopped"),
        }
        st.table.remove(&id);
        Ok(())
    }
}
