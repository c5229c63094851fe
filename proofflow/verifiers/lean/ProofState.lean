/-
proofflow's proof-state program: tactic-level interaction with Lean, a sibling of
Checker.lean (docs/proving.md, "Tactic-level proving"). Driver: verifiers/lean/proofstate.py.

Run with `lean --run ProofState.lean [REQUEST_DIR]` (or `lake env lean --run ...` inside a
Lean project). Same transport as the checker: one JSON object per line on stdin, or the
n-th request in the file REQUEST_DIR/n.json; one JSON line per answer on stdout.

  first line  {"header": "..."}  -> {"ready": true, "version": .., "header_errors": [..]}
  start       {"id", "op": "start", "source": "theorem t .. := by\n  sorry\n"}
              -> {"id", "states": [{"state": k, "goals": [..], "line", "column"}..], "messages": [..]}
              one state per `sorry` tactic of the source, in source order (a statement
              `... := by sorry`, or every hole of a checked sketch)
  run_tac     {"id", "op": "run_tac", "state": k, "tactic": "intro h"}
              -> {"id", "state": k', "goals": [..], "proved": bool}  or  {"id", "tactic_error": ".."}

A state is kept in this process (its metavariable context and open goals) and can be
expanded any number of times; applying a tactic never changes the state it starts from.
"proved" means no goal is left AND the hole's proof term has no `sorry` and no
metavariable. This program decides no verdict: a finished tactic script is checked again
as a whole file by the checker program and its audit.

Why the elaboration monads are run by hand (TacticM → TermElabM → MetaM → CoreM → IO):
on the wasm build `Tactic.run`, `getGoals`, `saveState` and `TermElabM.run` do not
compile (`Unknown constant ..._redArg`: only the public part of the library .oleans is
there). For the same reason the code uses plain recursion instead of List/Array library
combinators (see Checker.lean).
-/
module

public import Lean

public section

open Lean Elab

namespace ProofflowProofState

def lapp {α} : List α → List α → List α
  | [], ys => ys
  | x :: xs, ys => x :: lapp xs ys

def lfilter {α} (p : α → Bool) : List α → List α
  | [] => []
  | x :: xs => if p x then x :: lfilter p xs else lfilter p xs

def toArr {α} (acc : Array α) : List α → Array α
  | [] => acc
  | x :: xs => toArr (acc.push x) xs

partial def arrFold {α β} (f : β → α → β) (a : Array α) (i : Nat) (b : β) : β :=
  if h : i < a.size then arrFold f a (i + 1) (f b a[i]) else b

def lmapM {m} [Monad m] {α β} (f : α → m β) : List α → m (List β)
  | [] => pure []
  | x :: xs => do let y ← f x; let ys ← lmapM f xs; pure (y :: ys)

def lmap {α β} (f : α → β) : List α → List β
  | [] => []
  | x :: xs => f x :: lmap f xs

def strArr (xs : List String) : Json := Json.arr (toArr #[] (lmap Json.str xs))

def joinLines : List String → String
  | [] => ""
  | [x] => x
  | x :: xs => x ++ "\n" ++ joinLines xs

def isNil {α} : List α → Bool
  | [] => true
  | _ => false

def lrev {α} (acc : List α) : List α → List α
  | [] => acc
  | x :: xs => lrev (x :: acc) xs

/-- Insertion into a list sorted by `lt` (the holes of one source are few). -/
def insertBy {α} (lt : α → α → Bool) (x : α) : List α → List α
  | [] => [x]
  | y :: ys => if lt x y then x :: y :: ys else y :: insertBy lt x ys

partial def paNode {α} (n : PersistentArrayNode α) (acc : Array α) : Array α :=
  match n with
  | .leaf vs => arrFold (·.push ·) vs 0 acc
  | .node cs => arrFold (fun a c => paNode c a) cs 0 acc

def paArray {α} (p : PersistentArray α) : Array α := arrFold (·.push ·) p.tail 0 (paNode p.root #[])

def messageJson (m : Message) : IO Json := do
  let text ← m.data.toString
  let sev := match m.severity with
    | .error => "error" | .warning => "warning" | .information => "info"
  return Json.mkObj [("severity", Json.str sev), ("text", Json.str text),
    ("line", Json.num m.pos.line), ("column", Json.num m.pos.column)]

/-- Everything needed to run a tactic on a goal again: the elaboration context the hole
was elaborated in, the metavariable context, the open goals, and the hole's own goal
(whose instantiated proof term says whether the hole is proved). -/
structure PState where
  env : Environment
  fileMap : FileMap
  options : Options
  currNamespace : Name
  openDecls : List OpenDecl
  mctx : MetavarContext
  ngen : NameGenerator
  goals : List MVarId
  root : MVarId

partial def infoNodes (ctx? : Option ContextInfo) (t : InfoTree) (acc : Array (ContextInfo × Info)) :
    Array (ContextInfo × Info) :=
  match t with
  | .context i t => infoNodes (i.mergeIntoOuter? ctx?) t acc
  | .node i cs =>
    let acc := match ctx? with | some ci => acc.push (ci, i) | none => acc
    arrFold (fun a c => infoNodes ctx? c a) (paArray cs) 0 acc
  | .hole _ => acc

/-- Runs `x` in the context of state `st` (a TermElabM computation, run by hand down to
IO). Returns its value and the metavariable context and name generator after it; an
exception or an error message logged on the way is the `.error` text. -/
def runIn {α} (st : PState) (heartbeats : Nat) (x : Term.TermElabM α) :
    IO (Except String (α × MetavarContext × NameGenerator)) := do
  let opts := if heartbeats == 0 then st.options else st.options.setNat `maxHeartbeats heartbeats
  let coreCtx : Core.Context :=
    { fileName := "<proofstate>", fileMap := st.fileMap, options := opts,
      currNamespace := st.currNamespace, openDecls := st.openDecls,
      initHeartbeats := ← IO.getNumHeartbeats, maxHeartbeats := heartbeats * 1000 }
  let coreState : Core.State := { env := st.env, ngen := st.ngen }
  let termCtx : Term.Context := { errToSorry := false }
  let metaM : MetaM (α × Term.State) := (x termCtx).run {}
  try
    let ((((a, _), ms), cs)) ← (metaM.run {} { mctx := st.mctx }).toIO coreCtx coreState
    let errors := lfilter (·.severity == .error) cs.messages.toList
    match errors with
    | [] => return .ok (a, ms.mctx, cs.ngen)
    | es => return .error (joinLines (← lmapM (fun (m : Message) => m.data.toString) es))
  catch e =>
    return .error (toString e)

def ppGoals (goals : List MVarId) : MetaM (List String) :=
  lmapM (fun g => do return toString (← Meta.ppGoal g)) goals

structure Step where
  goals : List MVarId
  pp : List String
  proved : Bool

/-- Parses `tac` as one tactic, or else as a tactic sequence (wrapped in parentheses, so
`intro h; cases h` and several lines are accepted). -/
def parseTactic (env : Environment) (tac : String) : Except String Syntax :=
  match Parser.runParserCategory env `tactic tac "<tactic>" with
  | .ok stx => .ok stx
  | .error e =>
    match Parser.runParserCategory env `tactic ("(" ++ tac ++ "\n)") "<tactic>" with
    | .ok stx => .ok stx
    | .error _ => .error e

def runTactic (st : PState) (heartbeats : Nat) (tac : String) : IO (Except String PState × List String × Bool) := do
  match parseTactic st.env tac with
  | .error e => return (.error s!"parse error: {e}", [], false)
  | .ok stx =>
    let tacM : Tactic.TacticM Unit := do
      Tactic.evalTactic stx
      Term.synthesizeSyntheticMVarsNoPostponing
      Tactic.pruneSolvedGoals
    let termM : Term.TermElabM Step := do
      let ((), ts) ← (tacM { elaborator := .anonymous, recover := false }).run { goals := st.goals }
      let pp ← ppGoals ts.goals
      let proof ← instantiateMVars (mkMVar st.root)
      let proved := isNil ts.goals && !proof.hasSorry && !proof.hasExprMVar
      return { goals := ts.goals, pp := pp, proved := proved }
    match ← runIn st heartbeats termM with
    | .error e => return (.error e, [], false)
    | .ok (step, mctx, ngen) =>
      if isNil step.goals && !step.proved then
        return (.error "the goals were closed with `sorry` (or left a metavariable): not a proof", [], false)
      return (.ok { st with mctx := mctx, ngen := ngen, goals := step.goals }, step.pp, step.proved)

structure Header where
  state : Command.State

def inputContext (text fileName : String) : Parser.InputContext :=
  { inputString := text, fileName := fileName, fileMap := text.toFileMap }

def loadHeader (text : String) : IO (Header × List Json) := do
  let inputCtx := inputContext text "<header>"
  let (hdr, parserState, msgs) ← Parser.parseHeader inputCtx
  let (env, msgs) ← processHeader hdr {} msgs inputCtx
  let s ← IO.processCommands inputCtx parserState (Command.mkState env msgs {})
  let errors ← lmapM messageJson (lfilter (·.severity == .error) s.commandState.messages.toList)
  return ({ state := s.commandState }, errors)

abbrev Store := IO.Ref (Array PState)

def field (req : Json) (k : String) : String := (req.getObjValAs? String k).toOption.getD ""

def isSorryTactic (i : Info) : Bool :=
  match i with
  | .ofTacticInfo ti => ti.stx.getKind == ``Lean.Parser.Tactic.tacticSorry
  | _ => false

/-- Elaborates `source` from the header's state and makes one proof state per `sorry`
tactic in it (source order), from the goal the `sorry` was given: the tactic info's
`goalsBefore` in its `mctxBefore` (the surrounding context's own mctx already has that
goal assigned to `sorry`). -/
def start (h : Header) (store : Store) (req : Json) : IO Json := do
  let source := field req "source"
  let inputCtx := inputContext source "<source>"
  let cmdState := { h.state with messages := {}, infoState := { enabled := true } }
  let s ← IO.processCommands inputCtx {} cmdState
  let msgs := s.commandState.messages.toList
  let messages ← lmapM messageJson (lfilter (·.severity == .error) msgs)
  let nodes := (arrFold (fun a t => infoNodes none t a) (paArray s.commandState.infoState.trees) 0 #[]).toList
  let mut seen : List (Nat × Nat) := []
  let mut found : List (Position × ContextInfo × TacticInfo) := []
  for (ci, info) in nodes do
    if !isSorryTactic info then continue
    let .ofTacticInfo ti := info | continue
    let some pos := info.stx.getPos? | continue
    let p := inputCtx.fileMap.toPosition pos
    if seen.contains (p.line, p.column) then continue
    seen := (p.line, p.column) :: seen
    found := (p, ci, ti) :: found
  -- source order (info trees list a command's nodes outermost first)
  let before (a b : Position × ContextInfo × TacticInfo) : Bool :=
    a.1.line < b.1.line || (a.1.line == b.1.line && a.1.column < b.1.column)
  let mut sorted : List (Position × ContextInfo × TacticInfo) := []
  for x in found do
    sorted := insertBy before x sorted
  let mut states : List Json := []
  for (p, ci, ti) in sorted do
    let root :: _ := ti.goalsBefore | continue
    let st : PState :=
      { env := ci.env, fileMap := ci.fileMap, options := ci.options, currNamespace := ci.currNamespace,
        openDecls := ci.openDecls, mctx := ti.mctxBefore, ngen := { namePrefix := `_proofstate },
        goals := ti.goalsBefore, root := root }
    let pp ← runIn st 0 (ppGoals st.goals)
    let goals := match pp with | .ok (g, _, _) => g | .error e => [s!"<cannot print the goal: {e}>"]
    let id := (← store.get).size
    store.modify (·.push st)
    states := Json.mkObj [("state", Json.num id), ("goals", strArr goals),
      ("line", Json.num p.line), ("column", Json.num p.column)] :: states
  return Json.mkObj [("states", Json.arr (toArr #[] (lrev [] states))), ("messages", Json.arr (toArr #[] messages))]

def runTac (store : Store) (req : Json) : IO Json := do
  let sid := (req.getObjValAs? Nat "state").toOption.getD 0
  let heartbeats := (req.getObjValAs? Nat "heartbeats").toOption.getD 200000
  let some st := (← store.get)[sid]? | return Json.mkObj [("tactic_error", Json.str s!"unknown state {sid}")]
  let (r, pp, proved) ← runTactic st heartbeats (field req "tactic")
  match r with
  | .error e => return Json.mkObj [("tactic_error", Json.str e)]
  | .ok st' =>
    let id := (← store.get).size
    store.modify (·.push st')
    return Json.mkObj [("state", Json.num id), ("goals", strArr pp), ("proved", Json.bool proved)]

def reply (j : Json) : IO Unit := do
  let out ← IO.getStdout
  out.putStrLn j.compress
  out.flush

/-- The next request line: from stdin, or the file `dir/n.json` polled every 5 ms (why
files: a live stdin pipe loses bytes under the wasm build; see Checker.lean). -/
partial def nextLine (stdin : IO.FS.Stream) (dir : Option System.FilePath) (n : Nat) : IO String := do
  match dir with
  | none => stdin.getLine
  | some d =>
    let p := d / s!"{n}.json"
    if ← p.pathExists then
      let s ← IO.FS.readFile p
      IO.FS.removeFile p
      return s
    else
      IO.sleep 5
      nextLine stdin dir n

def handle (h : Header) (store : Store) (req : Json) : IO Json := do
  let t0 ← IO.monoMsNow
  let op := field req "op"
  let answer ← if op == "start" then start h store req
    else if op == "run_tac" then runTac store req
    else pure (Json.mkObj [("error", Json.str s!"unknown op {op}")])
  let t1 ← IO.monoMsNow
  return answer.setObjVal! "id" ((req.getObjVal? "id").toOption.getD Json.null)
    |>.setObjVal! "time_ms" (Json.num (t1 - t0))

partial def serve (stdin : IO.FS.Stream) (dir : Option System.FilePath) (n : Nat) (h : Header)
    (store : Store) : IO Unit := do
  let line ← nextLine stdin dir n
  if line.isEmpty then return
  if !line.trimAscii.isEmpty then
    match Json.parse line with
    | .error e => reply <| Json.mkObj [("error", Json.str s!"bad request: {e}")]
    | .ok req =>
      try reply (← handle h store req)
      catch e => reply <| Json.mkObj [("id", (req.getObjVal? "id").toOption.getD Json.null),
                                      ("error", Json.str (toString e))]
  serve stdin dir (n + 1) h store

end ProofflowProofState

open ProofflowProofState in
public unsafe def main (args : List String) : IO UInt32 := do
  enableInitializersExecution
  try initSearchPath (← findSysroot) catch _ => searchPathRef.set (← addSearchPathFromEnv {})
  reply <| Json.mkObj [("hello", Json.bool true)]
  let stdin ← IO.getStdin
  let dir : Option System.FilePath := match args with
    | d :: _ => some d
    | [] => none
  let first ← nextLine stdin dir 0
  let header := match Json.parse first with
    | .ok j => field j "header"
    | .error _ => ""
  let (h, headerErrors) ← loadHeader header
  reply <| Json.mkObj [("ready", Json.bool true), ("version", Json.str Lean.versionString),
    ("emscripten", Json.bool System.Platform.isEmscripten), ("header_errors", Json.arr (toArr #[] headerErrors))]
  serve stdin dir 1 h (← IO.mkRef #[])
  return 0
