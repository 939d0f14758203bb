//! Authentication (bearer tokens from the tokens file) and authorization: one table of
//! RPC x role -> which accounts the principal may name, checked in one place.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use serde::Deserialize;

use crate::error::ApiError;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Authority,
    /// A provincial environment authority: the verification of its entities.
    Province,
    Verifier,
    Member,
    Entity,
    Pledgee,
    Operator,
    Auditor,
}

impl Role {
    pub const ALL: [Role; 8] = [
        Role::Authority,
        Role::Verifier,
        Role::Member,
        Role::Entity,
        Role::Pledgee,
        Role::Operator,
        Role::Auditor,
        // Last: generated tokens files number principals in this order.
        Role::Province,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Role::Authority => "authority",
            Role::Province => "province",
            Role::Verifier => "verifier",
            Role::Member => "member",
            Role::Entity => "entity",
            Role::Pledgee => "pledgee",
            Role::Operator => "operator",
            Role::Auditor => "auditor",
        }
    }
}

/// An authenticated caller.
#[derive(Debug)]
pub struct Principal {
    pub id: u64,
    pub name: String,
    pub role: Role,
    /// Accounts this principal acts for (registry ids = trading account ids).
    pub accounts: Vec<u64>,
    /// Staff of the exchange, the registry or the authority: barred from trading.
    pub staff_of: Option<StaffOf>,
    /// A province principal's province (as the entities' `province` names it).
    pub province: Option<String>,
    /// A verifier's verification body (its registry id): the files it may act on.
    pub body: Option<u32>,
    /// Trading requests of this principal in flight now.
    pub in_flight: AtomicUsize,
    /// Open streams of this principal now.
    pub streams: AtomicUsize,
}

impl Principal {
    pub fn owns(&self, account: u64) -> bool {
        self.accounts.contains(&account)
    }
}

/// The bodies whose staff may not trade allowances (the rules bar the staff of the
/// exchange, the registry and the competent authority from the market).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StaffOf {
    Exchange,
    Registry,
    Authority,
}

impl StaffOf {
    pub fn name(self) -> &'static str {
        match self {
            StaffOf::Exchange => "exchange",
            StaffOf::Registry => "registry",
            StaffOf::Authority => "authority",
        }
    }
}

/// What staff may not call: everything that enters or takes an order. Cancelling what
/// rests stays allowed (it only reduces what they have in the market).
pub const STAFF_BARRED_RPCS: [Rpc; 6] = [
    Rpc::PlaceOrder,
    Rpc::AmendOrder,
    Rpc::OrderEntry,
    Rpc::ProposeBlock,
    Rpc::AcceptBlock,
    Rpc::PlaceBid,
];

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PrincipalEntry {
    /// Stable: the journal records it as the actor (four eyes compare it), so it must not
    /// change with the entry's place in the file.
    id: Option<u64>,
    name: String,
    token: String,
    role: Role,
    #[serde(default)]
    accounts: Vec<u64>,
    /// `exchange`, `registry` or `authority` for their staff.
    #[serde(default)]
    staff_of: Option<StaffOf>,
    /// Required of a `province` principal, refused on any other.
    #[serde(default)]
    province: Option<String>,
    /// A `verifier` principal's body (staff of one verification body).
    #[serde(default)]
    body: Option<u32>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TokensFile {
    #[serde(default)]
    principal: Vec<PrincipalEntry>,
}

/// A province principal names its province and nothing else does; only a verifier names
/// a body.
fn check_scoping(p: &PrincipalEntry) -> Result<(), String> {
    match (&p.province, p.role) {
        (None, Role::Province) => {
            return Err(format!(
                "principal {:?}: a province principal needs `province = \"...\"`",
                p.name
            ));
        }
        (Some(name), Role::Province) if name.trim().is_empty() => {
            return Err(format!("principal {:?}: an empty province", p.name));
        }
        (Some(_), role) if role != Role::Province => {
            return Err(format!(
                "principal {:?}: only a province principal has a province",
                p.name
            ));
        }
        _ => {}
    }
    match (p.body, p.role) {
        (Some(0), _) => Err(format!("principal {:?}: body ids start at 1", p.name)),
        (Some(_), role) if role != Role::Verifier => Err(format!(
            "principal {:?}: only a verifier principal has a body",
            p.name
        )),
        _ => Ok(()),
    }
}

/// Every principal by token.
#[derive(Debug, Default)]
pub struct Tokens {
    by_token: HashMap<String, Arc<Principal>>,
}

impl Tokens {
    pub fn parse(text: &str) -> Result<Tokens, String> {
        let file: TokensFile = toml::from_str(text).map_err(|e| e.to_string())?;
        let mut by_token = HashMap::new();
        let mut ids = HashMap::new();
        for p in file.principal {
            if p.token.len() < 16 {
                return Err(format!(
                    "principal {:?}: token shorter than 16 characters",
                    p.name
                ));
            }
            let id = match p.id {
                Some(id) if id > 0 => id,
                _ => {
                    return Err(format!(
                        "principal {:?}: give it a stable `id = N` (1 or more, unique): the \
                         journal records it",
                        p.name
                    ));
                }
            };
            if let Some(other) = ids.insert(id, p.name.clone()) {
                return Err(format!(
                    "principals {other:?} and {:?} share id {id}",
                    p.name
                ));
            }
            check_scoping(&p)?;
            let principal = Arc::new(Principal {
                id,
                name: p.name,
                role: p.role,
                accounts: p.accounts,
                staff_of: p.staff_of,
                province: p.province,
                body: p.body,
                in_flight: AtomicUsize::new(0),
                streams: AtomicUsize::new(0),
            });
            if by_token.insert(p.token, principal).is_some() {
                return Err(format!("principal {id}: token used twice"));
            }
        }
        Ok(Tokens { by_token })
    }

    pub fn load(path: &Path) -> Result<Tokens, String> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        Tokens::parse(&text).map_err(|e| format!("{}: {e}", path.display()))
    }

    /// Writes a tokens file with one random token per role (first start without one).
    pub fn generate(path: &Path) -> Result<(), String> {
        let mut random = [0u8; 16 * Role::ALL.len()];
        std::fs::File::open("/dev/urandom")
            .and_then(|mut f| std::io::Read::read_exact(&mut f, &mut random))
            .map_err(|e| format!("cannot read /dev/urandom: {e}"))?;
        let mut text = String::from(
            "# carbonx principals: one bearer token each. Generated on first start; edit freely.\n\
             # role: authority | province | verifier | member | entity | pledgee | operator | auditor\n\
             # accounts: the registry/trading account ids the principal acts for.\n\
             # province: a province principal's province; body: a verifier's body id.\n",
        );
        for (n, role) in Role::ALL.iter().enumerate() {
            let token: String = random[n * 16..(n + 1) * 16]
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect();
            text.push_str(&format!(
                "\n[[principal]]\nid = {2}\nname = \"{0}\"\nrole = \"{0}\"\ntoken = \"{1}\"\naccounts = []\n",
                role.name(),
                token,
                n + 1
            ));
            if *role == Role::Province {
                text.push_str("province = \"Beijing\"\n");
            }
        }
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(|e| e.to_string())?;
        }
        std::fs::write(path, text).map_err(|e| format!("cannot write {}: {e}", path.display()))
    }

    /// Every principal, by id.
    pub fn principals(&self) -> Vec<Arc<Principal>> {
        let mut all: Vec<_> = self.by_token.values().cloned().collect();
        all.sort_by_key(|p| p.id);
        all
    }

    /// The name of the principal with `id` (journal entries record the actor's id).
    pub fn name_of(&self, id: u64) -> Option<String> {
        self.by_token
            .values()
            .find(|p| p.id == id)
            .map(|p| p.name.clone())
    }

    pub fn authenticate(&self, token: &str) -> Option<Arc<Principal>> {
        self.by_token.get(token).cloned()
    }

    pub fn len(&self) -> usize {
        self.by_token.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_token.is_empty()
    }
}

/// The file in the data directory that remembers which id each principal had.
pub const PRINCIPALS_SEEN: &str = "principals.seen";

/// Refuses a tokens file that gives a known id to another name, or a known name another
/// id (four eyes and the journal's actors rest on ids meaning the same principal for
/// good); remembers the principals it has not seen yet in `seen` (lines `id name`).
pub fn check_stable_ids(tokens: &Tokens, seen: &Path) -> Result<(), String> {
    let text = match std::fs::read_to_string(seen) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
        Err(e) => return Err(format!("{}: {e}", seen.display())),
    };
    let mut by_id: HashMap<u64, String> = HashMap::new();
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let (id, name) = line
            .split_once(' ')
            .and_then(|(id, name)| Some((id.parse::<u64>().ok()?, name.to_string())))
            .ok_or_else(|| format!("{}: bad line {line:?}", seen.display()))?;
        by_id.insert(id, name);
    }
    let mut added = String::new();
    for p in tokens.principals() {
        match by_id.get(&p.id) {
            Some(name) if *name == p.name => continue,
            Some(name) => {
                return Err(format!(
                    "tokens file: id {} was {name:?} and is now {:?}; ids must not move to another principal ({})",
                    p.id,
                    p.name,
                    seen.display()
                ));
            }
            None => {}
        }
        if let Some((id, _)) = by_id.iter().find(|(_, n)| **n == p.name) {
            return Err(format!(
                "tokens file: {:?} had id {id} and now has {}; ids must not change ({})",
                p.name,
                p.id,
                seen.display()
            ));
        }
        if p.name.contains('\n') {
            return Err(format!("principal {}: a name on one line", p.id));
        }
        added.push_str(&format!("{} {}\n", p.id, p.name));
    }
    if added.is_empty() {
        return Ok(());
    }
    let tmp = seen.with_extension("tmp");
    let write = || -> std::io::Result<()> {
        let mut f = std::fs::File::create(&tmp)?;
        std::io::Write::write_all(&mut f, format!("{text}{added}").as_bytes())?;
        f.sync_all()?;
        std::fs::rename(&tmp, seen)?;
        if let Some(dir) = seen.parent() {
            std::fs::File::open(dir)?.sync_all()?;
        }
        Ok(())
    };
    write().map_err(|e| format!("{}: {e}", seen.display()))
}

/// Which accounts a role may name in a request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scope {
    /// Only accounts bound to the principal.
    Own,
    /// Any account.
    Any,
    /// A province's: the entities of its province (the handler or the registry checks,
    /// OUTSIDE_JURISDICTION).
    Jurisdiction,
    /// A verifier's: the files assigned to its body (BODY_NOT_ASSIGNED).
    Assigned,
}

/// Every RPC of the API, for the authorization table.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Rpc {
    // Trading
    PlaceOrder,
    CancelOrder,
    AmendOrder,
    CancelAll,
    GetOrder,
    ListOrders,
    GetTradingAccount,
    OrderEntry,
    StreamExecutions,
    ProposeBlock,
    AcceptBlock,
    RejectBlock,
    CancelBlock,
    // Market data
    MarketData,
    // Auctions
    AnnounceBidding,
    OpenBidding,
    PlaceBid,
    CloseBidding,
    AnnounceDisposal,
    // Registry
    OpenAccount,
    GetAccount,
    SetAccountStatus,
    GetHoldings,
    Issue,
    Allocate,
    ProposeTransfer,
    ApproveTransfer,
    CancelTransfer,
    SetFourEyesThreshold,
    ListProposals,
    MoveToTrading,
    MoveFromTrading,
    Freeze,
    Unfreeze,
    RegisterPledge,
    ReleasePledge,
    EnforcePledge,
    ListPledges,
    VoluntaryCancel,
    ReadJournal,
    VerifyJournal,
    // Compliance
    RegisterPlan,
    GetPlan,
    LoadEntities,
    LoadActivity,
    RecordVerified,
    RunAllocation,
    Surrender,
    GetCompliance,
    ListCompliance,
    GetTotals,
    CloseYear,
    ExportReport,
    // Emissions accounting
    RegisterFactors,
    SetMonitoringPlan,
    DepositMonth,
    SubmitReport,
    ConfirmReport,
    GetMonth,
    GetEmissionsReport,
    // Verification
    RegisterVerificationRules,
    RegisterBody,
    /// RecordEngagement, AssignBody.
    Assign,
    /// ReviewStep, RaiseFinding, ResolveFinding, Conclude: the body's work.
    Review,
    /// Notify and DecideObjection: the province's decisions.
    Notify,
    Object,
    GetVerificationFile,
    ListVerificationQueue,
    ListBodies,
    // Carry-over
    FixCarryOver,
    ApplyCarryOver,
    ConvertCarryOver,
    GetCarryOver,
    // Admin
    Instruments,
    TradingDay,
    Funds,
    RestrictTradingAccount,
    /// SetInstrumentLimits and SetPositionLimit.
    RiskLimits,
    LargeHolders,
    Reconcile,
}

use Role::{Auditor, Authority, Entity, Member, Operator, Pledgee, Province, Verifier};
use Scope::{Any, Assigned, Jurisdiction, Own};

/// THE authorization table: who may call what, for which accounts. A role absent from a
/// row is refused (PERMISSION_DENIED, reason ROLE_NOT_ALLOWED); a role with `Own` naming an
/// account not bound to it is refused (PERMISSION_DENIED, reason ACCOUNT_NOT_ALLOWED).
pub fn rule(rpc: Rpc) -> &'static [(Role, Scope)] {
    match rpc {
        Rpc::PlaceOrder
        | Rpc::CancelOrder
        | Rpc::AmendOrder
        | Rpc::OrderEntry
        | Rpc::ProposeBlock
        | Rpc::AcceptBlock
        | Rpc::RejectBlock
        | Rpc::CancelBlock
        | Rpc::PlaceBid => &[(Member, Own), (Entity, Own)],
        // The operator cancels for a defaulting or restricted member.
        Rpc::CancelAll => &[(Member, Own), (Entity, Own), (Operator, Any)],
        Rpc::GetOrder | Rpc::ListOrders | Rpc::StreamExecutions => &[
            (Member, Own),
            (Entity, Own),
            (Operator, Any),
            (Auditor, Any),
        ],
        // A pledgee bank sees the funds a pledge sale paid it.
        Rpc::GetTradingAccount => &[
            (Member, Own),
            (Entity, Own),
            (Pledgee, Own),
            (Operator, Any),
            (Auditor, Any),
        ],
        Rpc::MarketData | Rpc::GetPlan | Rpc::ListBodies => &[
            (Authority, Any),
            (Province, Any),
            (Verifier, Any),
            (Member, Any),
            (Entity, Any),
            (Pledgee, Any),
            (Operator, Any),
            (Auditor, Any),
        ],
        // Paid allocation is sold by the authority; members sell their own allowances; the
        // operator runs the auction.
        Rpc::AnnounceBidding => &[
            (Authority, Own),
            (Member, Own),
            (Entity, Own),
            (Operator, Any),
        ],
        Rpc::OpenBidding | Rpc::CloseBidding => &[(Operator, Any)],
        // The pledgee of the pledge, or the exchange at its request.
        Rpc::AnnounceDisposal => &[(Pledgee, Own), (Operator, Any)],
        Rpc::OpenAccount | Rpc::SetAccountStatus | Rpc::Issue | Rpc::SetFourEyesThreshold => {
            &[(Authority, Any)]
        }
        Rpc::Freeze | Rpc::Unfreeze => &[(Authority, Any)],
        Rpc::Allocate => &[(Authority, Own)],
        Rpc::GetAccount | Rpc::GetHoldings => &[
            (Authority, Any),
            (Member, Own),
            (Entity, Own),
            (Pledgee, Own),
            (Operator, Any),
            (Auditor, Any),
        ],
        Rpc::ProposeTransfer => &[(Authority, Own), (Member, Own), (Entity, Own)],
        // Second approver: the authority, or another principal of the sending account.
        Rpc::ApproveTransfer | Rpc::CancelTransfer => {
            &[(Authority, Any), (Member, Own), (Entity, Own)]
        }
        Rpc::ListProposals => &[(Authority, Any), (Auditor, Any), (Operator, Any)],
        // The authority moves paid allocation to the exchange to sell it at auction.
        Rpc::MoveToTrading | Rpc::MoveFromTrading => {
            &[(Authority, Own), (Member, Own), (Entity, Own)]
        }
        Rpc::VoluntaryCancel => &[(Member, Own), (Entity, Own)],
        // The bank registers, releases and enforces pledges on its own pledgee account.
        Rpc::RegisterPledge | Rpc::ReleasePledge | Rpc::EnforcePledge => &[(Pledgee, Own)],
        Rpc::ListPledges => &[
            (Pledgee, Own),
            (Authority, Any),
            (Auditor, Any),
            (Operator, Any),
        ],
        Rpc::ReadJournal | Rpc::VerifyJournal => {
            &[(Authority, Any), (Auditor, Any), (Operator, Any)]
        }
        Rpc::Instruments
        | Rpc::TradingDay
        | Rpc::Funds
        | Rpc::RestrictTradingAccount
        | Rpc::RiskLimits => &[(Operator, Any)],
        Rpc::LargeHolders => &[(Operator, Any), (Authority, Any), (Auditor, Any)],
        Rpc::Reconcile => &[(Operator, Any), (Auditor, Any), (Authority, Any)],
        // The ministry runs the cycle.
        Rpc::RegisterPlan
        | Rpc::LoadEntities
        | Rpc::LoadActivity
        | Rpc::RunAllocation
        | Rpc::CloseYear => &[(Authority, Any)],
        // Verifiers record verified emissions; the ministry also loads past years' figures.
        Rpc::RecordVerified => &[(Verifier, Any), (Authority, Any)],
        Rpc::FixCarryOver | Rpc::ConvertCarryOver => &[(Authority, Any)],
        // The ministry registers the guidelines' factors; each entity keeps its own plan,
        // deposits and report; verifiers (and the authority) confirm reports.
        Rpc::RegisterFactors => &[(Authority, Any)],
        Rpc::SetMonitoringPlan | Rpc::DepositMonth | Rpc::SubmitReport => &[(Entity, Own)],
        Rpc::ConfirmReport => &[(Verifier, Any), (Authority, Any)],
        Rpc::GetMonth | Rpc::GetEmissionsReport => &[
            (Entity, Own),
            (Province, Jurisdiction),
            (Verifier, Any),
            (Authority, Any),
            (Auditor, Any),
        ],
        Rpc::ApplyCarryOver => &[(Entity, Own)],
        Rpc::GetCarryOver => &[(Entity, Own), (Authority, Any), (Auditor, Any)],
        Rpc::Surrender => &[(Entity, Own)],
        Rpc::GetCompliance => &[
            (Authority, Any),
            (Province, Jurisdiction),
            (Verifier, Any),
            (Auditor, Any),
            (Entity, Own),
        ],
        // The ministry sets the year's rules; it and the provinces register bodies; each
        // province organises its entities' verification (the ministry may for any); the
        // assigned body's staff do the review; the entity objects for itself.
        Rpc::RegisterVerificationRules => &[(Authority, Any)],
        Rpc::RegisterBody => &[(Authority, Any), (Province, Any)],
        Rpc::Assign | Rpc::Notify => &[(Authority, Any), (Province, Jurisdiction)],
        Rpc::Review => &[(Verifier, Assigned)],
        Rpc::Object => &[(Entity, Own)],
        Rpc::GetVerificationFile => &[
            (Authority, Any),
            (Province, Jurisdiction),
            (Verifier, Assigned),
            (Auditor, Any),
            (Entity, Own),
        ],
        Rpc::ListVerificationQueue => &[
            (Authority, Any),
            (Province, Jurisdiction),
            (Verifier, Assigned),
            (Auditor, Any),
        ],
        Rpc::ListCompliance | Rpc::GetTotals | Rpc::ExportReport => {
            &[(Authority, Any), (Auditor, Any), (Verifier, Any)]
        }
    }
}

/// Checks that `principal` may call `rpc` naming `accounts` (all of them).
pub fn authorize(principal: &Principal, rpc: Rpc, accounts: &[u64]) -> Result<Scope, ApiError> {
    let Some(&(_, scope)) = rule(rpc).iter().find(|(role, _)| *role == principal.role) else {
        return Err(ApiError::permission(
            "ROLE_NOT_ALLOWED",
            format!("role {} may not call {rpc:?}", principal.role.name()),
        ));
    };
    if scope == Scope::Own
        && let Some(foreign) = accounts.iter().find(|a| !principal.owns(**a))
    {
        return Err(ApiError::permission(
            "ACCOUNT_NOT_ALLOWED",
            format!("{} may not act for account {foreign}", principal.name),
        ));
    }
    if let Some(body) = principal.staff_of
        && STAFF_BARRED_RPCS.contains(&rpc)
    {
        return Err(ApiError::permission(
            "STAFF_BARRED",
            format!(
                "{} is staff of the {} and may not trade",
                principal.name,
                body.name()
            ),
        ));
    }
    Ok(scope)
}

/// A slot of a per-principal limit, released on drop.
#[derive(Debug)]
pub struct Slot {
    principal: Arc<Principal>,
    stream: bool,
}

impl Drop for Slot {
    fn drop(&mut self) {
        let counter = if self.stream {
            &self.principal.streams
        } else {
            &self.principal.in_flight
        };
        counter.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Takes one in-flight (or stream) slot of `principal`, or refuses with RESOURCE_EXHAUSTED.
pub fn take_slot(principal: &Arc<Principal>, stream: bool, max: usize) -> Result<Slot, ApiError> {
    let counter = if stream {
        &principal.streams
    } else {
        &principal.in_flight
    };
    if counter.fetch_add(1, Ordering::AcqRel) >= max {
        counter.fetch_sub(1, Ordering::AcqRel);
        return Err(ApiError::exhausted(
            if stream {
                "STREAMS_PER_PRINCIPAL_LIMIT"
            } else {
                "IN_FLIGHT_PER_PRINCIPAL_LIMIT"
            },
            format!(
                "{} has {max} {} already",
                principal.name,
                if stream {
                    "streams open"
                } else {
                    "requests in flight"
                }
            ),
        ));
    }
    Ok(Slot {
        principal: principal.clone(),
        stream,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_readme_example_of_principals_parses() {
        let readme = include_str!("../../README.md");
        let block = readme
            .split("```toml\n")
            .skip(1)
            .filter_map(|b| b.split("```").next())
            .find(|b| b.contains("[[principal]]"))
            .unwrap_or_else(|| panic!("no [[principal]] example in the README"));
        let tokens = Tokens::parse(block).unwrap_or_else(|e| panic!("README example: {e}"));
        let roles: Vec<(u64, &str)> = tokens
            .principals()
            .iter()
            .map(|p| (p.id, p.role.name()))
            .collect();
        assert!(roles.contains(&(8, "member")) && roles.contains(&(9, "member")));
        assert!(roles.contains(&(10, "authority")), "{roles:?}");
        let scoped = readme
            .split("```toml\n")
            .skip(1)
            .filter_map(|b| b.split("```").next())
            .find(|b| b.contains("role = \"province\""))
            .unwrap_or_else(|| panic!("no province example in the README"));
        let tokens = Tokens::parse(scoped).unwrap_or_else(|e| panic!("README example: {e}"));
        let p = tokens.principals();
        assert_eq!(p[0].province.as_deref(), Some("Hebei"));
        assert_eq!((p[1].role, p[1].body), (Role::Verifier, Some(1)));
    }

    #[test]
    fn a_province_names_its_province_and_only_a_verifier_a_body() {
        let entry = |role: &str, extra: &str| {
            Tokens::parse(&format!(
                "[[principal]]\nid = 1\nname = \"x\"\nrole = \"{role}\"\ntoken = \"0123456789abcdef\"\n{extra}\n"
            ))
            .map(|_| ())
        };
        assert_eq!(entry("province", "province = \"Hebei\""), Ok(()));
        assert_eq!(entry("verifier", "body = 4"), Ok(()));
        assert_eq!(entry("verifier", ""), Ok(()));
        for (role, extra, says) in [
            ("province", "", "needs `province"),
            ("province", "province = \" \"", "an empty province"),
            (
                "authority",
                "province = \"Hebei\"",
                "only a province principal",
            ),
            ("member", "body = 4", "only a verifier principal"),
            ("verifier", "body = 0", "body ids start at 1"),
        ] {
            let e = entry(role, extra).unwrap_err();
            assert!(e.contains(says), "{role} {extra}: {e}");
        }
    }

    #[test]
    fn tokens_parse_and_authorize() {
        let tokens = Tokens::parse(
            "[[principal]]\nid = 1\nname = \"m1\"\nrole = \"member\"\ntoken = \"0123456789abcdef\"\naccounts = [7]\n",
        )
        .unwrap_or_else(|e| panic!("{e}"));
        let p = tokens
            .authenticate("0123456789abcdef")
            .unwrap_or_else(|| panic!("token"));
        assert!(authorize(&p, Rpc::PlaceOrder, &[7]).is_ok());
        let e = authorize(&p, Rpc::PlaceOrder, &[8]).unwrap_err();
        assert_eq!(e.reason, "ACCOUNT_NOT_ALLOWED");
        let e = authorize(&p, Rpc::Issue, &[]).unwrap_err();
        assert_eq!(e.reason, "ROLE_NOT_ALLOWED");
        assert!(
            Tokens::parse(
                "[[principal]]\nid = 1\nname = \"x\"\nrole = \"member\"\ntoken = \"0123456789abcdef\"\nstaff_of = \"bank\"\n"
            )
            .is_err()
        );
        assert!(
            Tokens::parse(
                "[[principal]]\nid = 1\nname = \"x\"\nrole = \"member\"\ntoken = \"short\"\n"
            )
            .is_err()
        );
        assert!(
            Tokens::parse(
                "[[principal]]\nid = 1\nname = \"x\"\nrole = \"king\"\ntoken = \"0123456789abcdef\"\n"
            )
            .is_err()
        );
    }

    fn file(entries: &[(Option<u64>, &str)]) -> Result<Tokens, String> {
        let mut text = String::new();
        for (n, (id, name)) in entries.iter().enumerate() {
            if let Some(id) = id {
                text.push_str(&format!("[[principal]]\nid = {id}\n"));
            } else {
                text.push_str("[[principal]]\n");
            }
            text.push_str(&format!(
                "name = \"{name}\"\nrole = \"member\"\ntoken = \"token-{n:012}\"\n"
            ));
        }
        Tokens::parse(&text)
    }

    #[test]
    fn principal_ids_are_stable_and_a_file_that_moves_one_is_refused() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let seen = dir.path().join(PRINCIPALS_SEEN);
        let check = |entries: &[(Option<u64>, &str)]| {
            let tokens = file(entries)?;
            check_stable_ids(&tokens, &seen)
        };
        assert_eq!(check(&[(Some(1), "m1"), (Some(2), "m2")]), Ok(()));
        assert_eq!(check(&[(Some(1), "m1"), (Some(2), "m2")]), Ok(()));
        // An entry removed above another, and one added: the others keep their ids.
        assert_eq!(check(&[(Some(2), "m2"), (Some(3), "bank")]), Ok(()));
        let seen_text = std::fs::read_to_string(&seen).unwrap_or_default();
        assert_eq!(seen_text, "1 m1\n2 m2\n3 bank\n");
        // Renumbering: m2 would take m1's id (and approve m1's proposals as a second
        // approver of its own), or m1 would come back under another id.
        let moved = check(&[(Some(1), "m2")]).unwrap_err();
        assert!(
            moved.contains("id 1 was \"m1\" and is now \"m2\""),
            "{moved}"
        );
        let renumbered = check(&[(Some(4), "m1")]).unwrap_err();
        assert!(
            renumbered.contains("\"m1\" had id 1 and now has 4"),
            "{renumbered}"
        );
        // Ids are required, positive and unique.
        let missing = file(&[(None, "m1")]).map(|_| ()).unwrap_err();
        assert!(missing.contains("stable `id = N`"), "{missing}");
        let zero = file(&[(Some(0), "m1")]).map(|_| ()).unwrap_err();
        assert!(zero.contains("stable `id = N`"), "{zero}");
        let twice = file(&[(Some(5), "a"), (Some(5), "b")])
            .map(|_| ())
            .unwrap_err();
        assert!(twice.contains("share id 5"), "{twice}");
    }

    #[test]
    fn staff_of_the_exchange_registry_and_authority_may_not_trade() {
        for body in ["exchange", "registry", "authority"] {
            let tokens = Tokens::parse(&format!(
                "[[principal]]\nid = 1\nname = \"clerk\"\nrole = \"member\"\ntoken = \"0123456789abcdef\"\naccounts = [7]\nstaff_of = \"{body}\"\n"
            ))
            .unwrap_or_else(|e| panic!("{e}"));
            let p = tokens
                .authenticate("0123456789abcdef")
                .unwrap_or_else(|| panic!("token"));
            for rpc in STAFF_BARRED_RPCS {
                let e = authorize(&p, rpc, &[7]).unwrap_err();
                assert_eq!(
                    (e.code, e.reason),
                    (tonic::Code::PermissionDenied, "STAFF_BARRED")
                );
            }
            // What reduces or reads their exposure stays open.
            for rpc in [
                Rpc::CancelOrder,
                Rpc::CancelAll,
                Rpc::GetOrder,
                Rpc::GetHoldings,
            ] {
                assert!(authorize(&p, rpc, &[7]).is_ok(), "{rpc:?}");
            }
            // Another member's account is still refused for what it is.
            let e = authorize(&p, Rpc::PlaceOrder, &[8]).unwrap_err();
            assert_eq!(e.reason, "ACCOUNT_NOT_ALLOWED");
        }
    }
}
