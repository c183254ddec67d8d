//! The scenario script's syntax tree: what the parser produces and the interpreter runs.
//!
//! Every command keeps its source position and line, so a failing expectation can print the
//! script line it came from.

use raftsim_protocol::kv::Op;
use raftsim_protocol::node::Role;

/// A position in a script (1-based line and column).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
pub struct Span {
    /// Line, from 1.
    pub line: u32,
    /// Column, from 1.
    pub col: u32,
}

/// A parsed script.
#[derive(Debug, Clone, PartialEq)]
pub struct Script {
    /// The file name as given (for error messages).
    pub file: String,
    /// The leading comment block (goal and method), without the `#` markers.
    pub header: Vec<String>,
    /// The `cluster` line's settings (the first command of every script).
    pub cluster: ClusterSpec,
    /// Position of the `cluster` line.
    pub cluster_span: Span,
    /// The commands after the `cluster` line, in order.
    pub commands: Vec<Spanned>,
}

/// A command with where it came from.
#[derive(Debug, Clone, PartialEq)]
pub struct Spanned {
    /// Where the command starts.
    pub span: Span,
    /// The source line, trimmed (for failure reports).
    pub text: String,
    /// The command.
    pub command: Command,
}

/// Which protocol a scenario runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Protocol {
    /// Raft.
    #[default]
    Raft,
    /// The leader-follower replicated KV store.
    Replication,
}

/// `cluster key=value ...`: every setting is optional; unset ones keep the scenario defaults
/// (the interpreter documents them).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ClusterSpec {
    /// `protocol=raft|replication`
    pub protocol: Option<Protocol>,
    /// `nodes=N`
    pub nodes: Option<u32>,
    /// `seed=N`
    pub seed: Option<u64>,
    /// `election=MIN..MAX` (ticks)
    pub election_ticks: Option<(u64, u64)>,
    /// `heartbeat=N` (ticks)
    pub heartbeat_ticks: Option<u64>,
    /// `lease=N` (ticks)
    pub lease_ticks: Option<u64>,
    /// `pre-vote=on|off`
    pub pre_vote: Option<bool>,
    /// `check-quorum=on|off`
    pub check_quorum: Option<bool>,
    /// `lease-reads=on|off`
    pub lease_reads: Option<bool>,
    /// `clients=N`
    pub clients: Option<u32>,
    /// `keys=N` (for generated operations)
    pub keys: Option<u32>,
    /// `workload=on|off`: clients generate random operations
    pub workload: Option<bool>,
    /// `delay=MIN..MAX` (ticks)
    pub delay_ticks: Option<(u64, u64)>,
    /// `loss=P`
    pub loss: Option<f64>,
    /// `dup=P`
    pub dup: Option<f64>,
    /// `corrupt=P`
    pub corrupt: Option<f64>,
    /// `sync=N` (disk sync ticks)
    pub sync_ticks: Option<u64>,
    /// `torn-writes=on|off`
    pub torn_writes: Option<bool>,
    /// `timeout=N` client request timeout (ticks)
    pub client_timeout_ticks: Option<u64>,
    /// `quorum=N` (replication protocol: acks needed, counting the leader)
    pub quorum: Option<u32>,
    /// Any other `key=value` the interpreter may understand (protocol-specific settings such
    /// as `keepalive=N`, `read-from-follower=on`, `pipeline=on`, `retain=N`), in order.
    pub extra: Vec<(String, String)>,
}

/// A reference to a node, resolved when the command runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NodeRef {
    /// `n3`
    Id(u32),
    /// `leader`: the single current leader (an error when there is none or several).
    Leader,
    /// `follower`: the lowest-numbered running follower.
    Follower,
    /// `random`: any node, drawn from the seed.
    Random,
    /// `random live`: any running node, drawn from the seed.
    RandomLive,
    /// A name bound by `let`.
    Alias(String),
}

/// A set of nodes: a list, or `all`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NodeSet {
    /// `all`: every node.
    All,
    /// `n1,n2,leader`
    List(Vec<NodeRef>),
}

/// A comparison in an expectation (`=`, `!=`, `<`, `<=`, `>`, `>=`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cmp {
    /// `=` (also written `==`)
    Eq,
    /// `!=`
    Ne,
    /// `<`
    Lt,
    /// `<=`
    Le,
    /// `>`
    Gt,
    /// `>=`
    Ge,
}

impl Cmp {
    /// Apply the comparison.
    pub fn holds(self, left: u64, right: u64) -> bool {
        match self {
            Cmp::Eq => left == right,
            Cmp::Ne => left != right,
            Cmp::Lt => left < right,
            Cmp::Le => left <= right,
            Cmp::Gt => left > right,
            Cmp::Ge => left >= right,
        }
    }

    /// The operator as written.
    pub fn symbol(self) -> &'static str {
        match self {
            Cmp::Eq => "=",
            Cmp::Ne => "!=",
            Cmp::Lt => "<",
            Cmp::Le => "<=",
            Cmp::Gt => ">",
            Cmp::Ge => ">=",
        }
    }
}

/// What `run until` waits for.
#[derive(Debug, Clone, PartialEq)]
pub enum Condition {
    /// `leader`: exactly one leader, in the highest term among running nodes.
    Leader,
    /// `leader is <node>` / `leader not <node>`: a stable leader that is (not) that node.
    LeaderIs {
        /// The node.
        node: NodeRef,
        /// `false` for `not`.
        is: bool,
    },
    /// `no leader`: no running node is leader.
    NoLeader,
    /// `committed <index> on <k>`: commit index ≥ index on at least k running nodes.
    Committed {
        /// The index.
        index: u64,
        /// How many nodes.
        nodes: u32,
    },
    /// `applied`: every running node applied everything the most advanced one committed.
    Applied,
    /// `quiet`: no client operation pending.
    Quiet,
    /// `client c1 done`: the client has no operation in flight.
    ClientDone {
        /// Client number.
        client: u32,
    },
    /// `role <node> <role>`.
    Role {
        /// The node.
        node: NodeRef,
        /// The role.
        role: Role,
    },
}

/// The kind of a client's last reply, for `expect reply`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReplyKind {
    /// `ok`, optionally `ok value=V` (`value=-` for not found)
    Ok {
        /// Expected value of a read, if given.
        value: Option<Option<String>>,
    },
    /// `duplicate`
    Duplicate,
    /// `gap`
    Gap,
    /// `not-leader`, optionally `hint=n2` or `hint=none`
    NotLeader {
        /// `None`: any hint; `Some(None)`: no hint; `Some(Some(n))`: that node.
        hint: Option<Option<NodeRef>>,
    },
    /// `session-expired`
    SessionExpired,
    /// `overloaded`
    Overloaded,
    /// `none`: no reply yet
    Nothing,
}

/// A check at this point of the run; failing one fails the scenario.
#[derive(Debug, Clone, PartialEq)]
pub enum Expectation {
    /// `expect leader <node>`: the single stable leader is that node.
    LeaderIs(NodeRef),
    /// `expect leaders <cmp> N`: number of running leaders.
    LeaderCount(Cmp, u32),
    /// `expect no leader among <nodes>`.
    NoLeaderAmong(NodeSet),
    /// `expect term <node> <cmp> N`.
    Term(NodeRef, Cmp, u64),
    /// `expect role <node> <role>`.
    Role(NodeRef, Role),
    /// `expect vote <node> = <node>` / `expect vote <node> = none`: the vote the node holds in
    /// its current term.
    Vote(NodeRef, Option<NodeRef>),
    /// `expect value <key>=<value> on <nodes>` (`-` for absent).
    Value {
        /// The key.
        key: String,
        /// The value, `None` for absent.
        value: Option<String>,
        /// Where.
        nodes: NodeSet,
    },
    /// `expect committed <index> on <k>` / `expect not committed <index> on <k>`: whether at
    /// least k running nodes have commit index ≥ index.
    Committed {
        /// The index.
        index: u64,
        /// How many nodes.
        nodes: u32,
        /// `false` for `not committed`.
        yes: bool,
    },
    /// `expect reply <client> <kind>`: the client's last reply.
    Reply {
        /// Client number.
        client: u32,
        /// What it must be.
        kind: ReplyKind,
    },
    /// `expect messages <Type> <cmp> N [since "<mark>"]`: messages of a type sent (since the
    /// named mark, or since the start).
    Messages {
        /// The message type name as traces show it (`AppendEntries`, `RequestVote`, ...).
        kind: String,
        /// Comparison.
        cmp: Cmp,
        /// Count.
        count: u64,
        /// Mark label to count from.
        since: Option<String>,
    },
    /// `expect applied <client> seq=<n> <cmp> K`: how many times each running node's state
    /// machine applied that write (K is usually 1: exactly once).
    AppliedTimes {
        /// Client number.
        client: u32,
        /// The write's sequence number.
        seq: u64,
        /// Comparison.
        cmp: Cmp,
        /// Count.
        times: u64,
    },
    /// `expect linearizable` / `expect not linearizable`: the history so far.
    Linearizable(bool),
    /// `expect checkers ok`: no checker has failed so far.
    CheckersOk,
    /// `expect converged`: every running node holds the same store (the leader-follower
    /// protocol's convergence).
    Converged,
    /// `expect note "text"` / `expect note <node> "text"`: some node (or that node) reported a
    /// status line containing the text (protocol notes such as `2/2 followers responded`).
    Note {
        /// The node, if one is named.
        node: Option<NodeRef>,
        /// Text the note must contain.
        text: String,
    },
    /// `expect stat <name> <cmp> N`: a run counter (`commits`, `corrupt-rejected`, ...).
    Stat {
        /// The counter's name.
        name: String,
        /// Comparison.
        cmp: Cmp,
        /// Value.
        value: u64,
    },
}

/// A client operation in a script.
#[derive(Debug, Clone, PartialEq)]
pub struct ClientOp {
    /// Client number (`c1` → 1).
    pub client: u32,
    /// The operation.
    pub op: Op,
    /// `seq=N`: an explicit sequence number (a retry or a gap).
    pub seq: Option<u64>,
    /// `to=<node>`: the node to send to first.
    pub to: Option<NodeRef>,
}

/// `net` settings; unset ones keep their values.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct NetSettings {
    /// `loss=P`
    pub loss: Option<f64>,
    /// `dup=P`
    pub dup: Option<f64>,
    /// `corrupt=P`
    pub corrupt: Option<f64>,
    /// `delay=MIN..MAX`
    pub delay_ticks: Option<(u64, u64)>,
}

/// One command.
#[derive(Debug, Clone, PartialEq)]
pub enum Command {
    /// `run N ticks`
    Run {
        /// Ticks to run.
        ticks: u64,
    },
    /// `advance N ticks`: handle every event due *before* `now + N`, then set the clock to
    /// `now + N`; events due at that very tick wait for the next command. A command after it
    /// (a fault) therefore happens first thing in that tick, as a random fault does in a run —
    /// which is why `raftsim shrink` writes its scripts with it.
    Advance {
        /// Ticks to advance.
        ticks: u64,
    },
    /// `run until <condition> within N ticks`: fails if the bound passes first.
    RunUntil {
        /// What to wait for.
        condition: Condition,
        /// The bound.
        within_ticks: u64,
    },
    /// `crash <node>` (`crash <node> torn`: keep a torn prefix of unsynced writes)
    Crash {
        /// The node.
        node: NodeRef,
        /// Tear the last unsynced write.
        torn: bool,
    },
    /// `restart <node>`
    Restart(NodeRef),
    /// `pause <node>`
    Pause(NodeRef),
    /// `resume <node>`
    Resume(NodeRef),
    /// `isolate <node>`: partition the node from every other.
    Isolate(NodeRef),
    /// `partition n1,n2 | n3,n4,n5`
    Partition(Vec<Vec<NodeRef>>),
    /// `cut n1->n2`: drop one direction of a link.
    Cut {
        /// Sender side.
        from: NodeRef,
        /// Receiver side.
        to: NodeRef,
    },
    /// `heal`: remove partitions and cuts.
    Heal,
    /// `net loss=P dup=P corrupt=P delay=MIN..MAX`
    Net(NetSettings),
    /// `rot <node>`: flip a bit in a durable record of the node's disk.
    Rot(NodeRef),
    /// `drift <node> <ppm>`: the node's clock runs fast (+) or slow (-).
    Drift {
        /// The node.
        node: NodeRef,
        /// Parts per million.
        ppm: i32,
    },
    /// `let <name> = <node>`: bind a name to the node a reference resolves to now.
    Let {
        /// The alias.
        name: String,
        /// The node reference.
        node: NodeRef,
    },
    /// `repeat N { ... }` (the block's commands on the following lines, `}` alone on a line).
    Repeat {
        /// Iterations.
        count: u32,
        /// The body.
        body: Vec<Spanned>,
    },
    /// `client c1 put k v [seq=N] [to=<node>]` and `get`, `append`, `cas k expected new`,
    /// `delete`.
    Client(ClientOp),
    /// `expect ...`
    Expect(Expectation),
    /// `mark "text"`: a label in the trace (and a reference point for `expect messages`).
    Mark(String),
    /// `print latency c1`: print the client's last operation latency in ticks.
    PrintLatency {
        /// Client number.
        client: u32,
    },
    /// `print "text"`: print a line to the scenario output.
    Print(String),
    /// `print stat <name>`: print a run counter (see `expect stat`).
    PrintStat(String),
    /// `heal-all within N ticks`: the heal phase — stop all faults, restart/resume every node,
    /// and require liveness (a leader, every pending operation done) within the bound.
    Liveness {
        /// The bound.
        within_ticks: u64,
    },
}
