/-
proofflow's Lean checker program (docs/formal.md, "The checker program").

Run with `lean --run Checker.lean [REQUEST_DIR]` (or `lake env lean --run ...` inside a
Lean project, e.g. one with Mathlib). Protocol: one JSON object per line on stdin (or, with
REQUEST_DIR, the n-th line in the file REQUEST_DIR/n.json, n = 0, 1, ...), one JSON object
per line on stdout.

  first line  {"header": "import Mathlib\nopen Nat\n"}
              -> {"ready": true, "version": ..., "emscripten": bool, "header_errors": [...]}
  then        {"id": .., "source": .., "name": .., "statement": ..}
              -> {"id": .., "messages": [..], "holes": [..], "facts": {..}, "time_ms": ..}

The header is imported once. Every request is elaborated from the header's command state
(environment, `open`s, options, and with the environment every parser, macro, attribute and
extension table), so nothing a candidate declares survives into the next request. What the
command state cannot restore is the process's own global state (the interpreter's and the
runtime's): a candidate that may have run code of its own inside this process (a macro,
syntax, notation or elaborator it declares, `#eval`, `run_cmd`, `initialize`, `native_decide`,
an attribute outside a short list of inert ones, any command outside the list of declaring
and scoping commands) is answered with `"recycle": true` and the program then exits, so
that no later request runs in a process it touched (the driver starts a fresh one). The
facts are what the Python audit (verifiers/lean/program.py) turns into rejection reasons;
this program decides nothing itself.
-/
module

public import Lean

-- Public, so that a precompiled ProofflowChecker.olean carries everything `main` needs.
public section

open Lean Elab

namespace ProofflowChecker

/-! Why the code below avoids most of the standard library's collection functions: on the
wasm build only the public part of each library `.olean` is present, and compiling a
definition that inlines a library function whose helpers are private (`Array.foldl`,
`List.map`, `for` over arrays, `HashMap.insert`, `mkInputContext`, ...) fails with
`Unknown constant ..._redArg`. Plain recursion over lists and array indices, and calls of
non-inlined library functions, compile on every build, so the program sticks to those. -/

def lapp {α} : List α → List α → List α
  | [], ys => ys
  | x :: xs, ys => x :: lapp xs ys

def lmap {α β} (f : α → β) : List α → List β
  | [] => []
  | x :: xs => f x :: lmap f xs

def lfilter {α} (p : α → Bool) : List α → List α
  | [] => []
  | x :: xs => if p x then x :: lfilter p xs else lfilter p xs

def lany {α} (p : α → Bool) : List α → Bool
  | [] => false
  | x :: xs => p x || lany p xs

def toArr {α} (acc : Array α) : List α → Array α
  | [] => acc
  | x :: xs => toArr (acc.push x) xs

partial def arrFold {α β} (f : β → α → β) (a : Array α) (i : Nat) (b : β) : β :=
  if h : i < a.size then arrFold f a (i + 1) (f b a[i]) else b

def lmapM {α β} (f : α → IO β) : List α → IO (List β)
  | [] => pure []
  | x :: xs => do let y ← f x; let ys ← lmapM f xs; pure (y :: ys)

def strArr (xs : List String) : Json := Json.arr (toArr #[] (lmap Json.str xs))

partial def paNode {α} (n : PersistentArrayNode α) (acc : Array α) : Array α :=
  match n with
  | .leaf vs => arrFold (·.push ·) vs 0 acc
  | .node cs => arrFold (fun a c => paNode c a) cs 0 acc

def paArray {α} (p : PersistentArray α) : Array α := arrFold (·.push ·) p.tail 0 (paNode p.root #[])

/-- Axioms the core library really declares. On the wasm build, imported theorems lose
their bodies and look like axioms, so there the walk stops at imported constants and
reports only these names (a trusted-leaf walk); on a real toolchain every reachable
constant is walked and every axiom is reported, like `Lean.collectAxioms`. -/
def coreAxioms : List Name :=
  [``propext, ``Classical.choice, ``Quot.sound, ``sorryAx, ``Lean.ofReduceBool,
   ``Lean.ofReduceNat, ``Lean.trustCompiler]

/-- Tokens that mean a search tactic was left in the proof. -/
def searchTokens : List String :=
  ["exact?", "apply?", "rw?", "rw??", "simp?", "simp?!", "simp_all?", "simp_all?!", "dsimp?",
   "aesop?", "hint", "rw_search", "says"]

def posJson (p : Position) : List (String × Json) :=
  [("line", Json.num p.line), ("column", Json.num p.column)]

def messageJson (m : Message) : IO Json := do
  let text ← m.data.toString
  let sev := match m.severity with
    | .error => "error" | .warning => "warning" | .information => "info"
  let endFields := match m.endPos with
    | some e => [("end_line", Json.num e.line), ("end_column", Json.num e.column)]
    | none => []
  return Json.mkObj (lapp [("severity", Json.str sev), ("text", Json.str text)] (lapp (posJson m.pos) endFields))

/-- Info nodes of a tree with their context (InfoTree.foldInfo, written out). -/
partial def infoNodes (ctx? : Option ContextInfo) (t : InfoTree) (acc : Array (ContextInfo × Info)) :
    Array (ContextInfo × Info) :=
  match t with
  | .context i t => infoNodes (i.mergeIntoOuter? ctx?) t acc
  | .node i cs =>
    let acc := match ctx? with | some ci => acc.push (ci, i) | none => acc
    arrFold (fun a c => infoNodes ctx? c a) (paArray cs) 0 acc
  | .hole _ => acc

def isHoleTactic (k : SyntaxNodeKind) : Bool :=
  k == ``Lean.Parser.Tactic.tacticSorry || k == ``Lean.Parser.Tactic.tacticAdmit

def ppIn (ci : ContextInfo) (lctx : LocalContext) (e : Expr) : IO String := do
  let x : MetaM String := do return toString (← Meta.ppExpr (← instantiateMVars e))
  let (s, _) ← (Meta.MetaM.run' x (ctx := { lctx := lctx }) (s := { mctx := ci.mctx })).toIO
    { fileName := ci.fileMap.source, fileMap := ci.fileMap, options := ci.options,
      currNamespace := ci.currNamespace, openDecls := ci.openDecls } { env := ci.env, ngen := ci.ngen }
  return s

/-- Holes: `sorry` / `admit` tactics with the goals they leave, and term-mode `sorry`
with its expected type. Read from the info trees, so comments never count. -/
def collectHoles (fileMap : FileMap) (trees : PersistentArray InfoTree) : IO (Array Json) := do
  let nodes := (arrFold (fun a t => infoNodes none t a) (paArray trees) 0 #[]).toList
  -- Tactic nodes first: `by sorry` also elaborates a term `sorry` at the same place.
  let tactics := lfilter (fun (_, i) => match i with
    | .ofTacticInfo ti => isHoleTactic ti.stx.getKind | _ => false) nodes
  let terms := lfilter (fun (_, i) => match i with
    | .ofTermInfo ti => ti.stx.getKind == ``Lean.Parser.Term.sorry | _ => false) nodes
  let mut seen : List (Nat × Nat) := []
  let mut out := #[]
  for (ci, info) in lapp tactics terms do
    let some pos := info.stx.getPos? | continue
    let p := fileMap.toPosition pos
    if seen.contains (p.line, p.column) then continue
    seen := (p.line, p.column) :: seen
    let (kind, goal) ← match info with
      | .ofTacticInfo ti =>
        let kind := if ti.stx.getKind == ``Lean.Parser.Tactic.tacticAdmit then "admit" else "sorry"
        pure (kind, toString (← ci.ppGoals ti.goalsBefore))
      | .ofTermInfo ti =>
        match ti.expectedType? with
        | some ty => pure ("sorry", "⊢ " ++ (← ppIn ci ti.lctx ty))
        | none => pure ("sorry", "")
      | _ => pure ("sorry", "")
    out := out.push (Json.mkObj (lapp [("kind", Json.str kind), ("goal", Json.str goal)] (posJson p)))
  return out

/-- Search-tactic atoms and `debug.skipKernelTC` identifiers in the candidate's syntax
(comments are not syntax). -/
partial def scanSyntax (acc : List String × List String) (stx : Syntax) : List String × List String :=
  match stx with
  | .atom _ val => (if searchTokens.contains val then val :: acc.1 else acc.1, acc.2)
  | .ident _ _ n _ => (acc.1, if n == `debug.skipKernelTC then "debug.skipKernelTC" :: acc.2 else acc.2)
  | .node _ _ args => arrFold scanSyntax args 0 acc
  | .missing => acc

/-! Isolation. Elaborating a candidate from the header's command state undoes everything
kept in the environment and the command state. Code the candidate runs inside this process
can reach further (global refs of the runtime and the interpreter: one candidate's macro made
a later candidate's `native_decide` kill the process, issue 20). So the program lists what in
a candidate may have run code of its own, and after such a candidate the process is not
reused. It is a list of what is known to be inert, not of what is known to be harmful: a
command or attribute it does not know counts as running code. -/

/-- Commands that only declare, scope, set options or query (`in` and `mutual` are looked
into; Mathlib's `lemma` is a `theorem`). -/
def inertCommands : List Name :=
  [`Lean.Parser.Command.declaration, `Lean.Parser.Command.namespace, `Lean.Parser.Command.end,
   `Lean.Parser.Command.section, `Lean.Parser.Command.noncomputableSection, `Lean.Parser.Command.open,
   `Lean.Parser.Command.variable, `Lean.Parser.Command.universe, `Lean.Parser.Command.set_option,
   `Lean.Parser.Command.check, `Lean.Parser.Command.check_failure, `Lean.Parser.Command.print,
   `Lean.Parser.Command.printAxioms, `Lean.Parser.Command.attribute, `Lean.Parser.Command.moduleDoc,
   `Lean.Parser.Command.eoi, `Lean.Parser.Command.exit, `Lean.Parser.Command.import]

/-- Attributes that only record something in the environment (simp sets, reducibility,
instances, compiler hints). `implemented_by` and `extern` run nothing by themselves (the
code they name runs only when something evaluates it, which counts on its own). -/
def inertAttributes : List String :=
  ["simp", "reducible", "irreducible", "semireducible", "instance", "inline", "noinline",
   "specialize", "match_pattern", "ext", "norm_cast", "push_cast", "grind", "refl", "symm",
   "trans", "congr", "elab_as_elim", "induction_eliminator", "cases_eliminator",
   "implemented_by", "extern", "deprecated", "local", "scoped"]

/-- Atoms and identifier endings that evaluate code: tactics and terms that run the
candidate's code or the compiler's output inside the elaborator. -/
def runningAtoms : List String :=
  ["native_decide", "run_tac", "by_elab", "#eval", "#eval!", "run_cmd", "run_elab", "run_meta"]
def runningIdents : List String :=
  ["native", "ofReduceBool", "reduceBool", "ofReduceNat", "reduceNat", "trustCompiler"]

def lastString (n : Name) : String := match n with | .str _ s => s | _ => ""

def attrName (attr : Syntax) : String :=
  if attr.getKind == `Lean.Parser.Attr.simple then lastString (attr.getArg 0).getId
  else lastString attr.getKind

/-- Inside one command: attributes outside the inert list, running atoms and identifiers. -/
partial def runningParts (acc : List String) (stx : Syntax) : List String :=
  match stx with
  | .atom _ val => if runningAtoms.contains val then val :: acc else acc
  | .ident _ _ n _ => if runningIdents.contains (lastString n) then lastString n :: acc else acc
  | .node _ k args =>
    let acc := if k == `Lean.Parser.Term.attrInstance then
        let a := attrName (stx.getArg 1)
        if inertAttributes.contains a then acc else s!"@[{a}]" :: acc
      else acc
    arrFold runningParts args 0 acc
  | .missing => acc

/-- Why a command may have run code of the candidate's own (empty: it cannot have). -/
partial def commandTaint (acc : List String) (stx : Syntax) : List String :=
  let k := stx.getKind
  if k == `Lean.Parser.Command.in then
    commandTaint (commandTaint acc (stx.getArg 0)) (stx.getArg 2)
  else if k == `Lean.Parser.Command.mutual then
    arrFold commandTaint (stx.getArg 1).getArgs 0 acc
  else if stx.isMissing || inertCommands.contains k || lastString k == "lemma" then
    runningParts acc stx
  else
    lastString k :: acc

/-- Constants `root` reaches that the header's environment does not have, and the axioms
it depends on. `trustImports`: stop at constants of imported modules and report only the
core library's real axioms among them (the wasm build, see coreAxioms). -/
partial def walk (env header : Environment) (trustImports : Bool) (todo : List Name)
    (seen : NameSet) (locals axioms : List Name) : List Name × List Name :=
  match todo with
  | [] => (locals, axioms)
  | c :: rest =>
    if seen.contains c then walk env header trustImports rest seen locals axioms else
    let seen := seen.insert c
    let imported := (env.getModuleIdxFor? c).isSome || (header.find? c).isSome
    if trustImports && imported then
      walk env header trustImports rest seen locals (if coreAxioms.contains c then c :: axioms else axioms)
    else match env.find? c with
      | none => walk env header trustImports rest seen locals axioms
      | some info =>
        let locals := if imported then locals else c :: locals
        let axioms := match info with | .axiomInfo _ => c :: axioms | _ => axioms
        walk env header trustImports (lapp info.getUsedConstantsAsSet.toList rest) seen locals axioms

/-- The declaration the kernel is asked to add again for `info` (none: added by another,
e.g. constructors and recursors come with their inductive). -/
def redeclare (env : Environment) (info : ConstantInfo) : Option Declaration :=
  match info with
  | .thmInfo v => some (.thmDecl v)
  | .defnInfo v => some (.defnDecl v)
  | .opaqueInfo v => some (.opaqueDecl v)
  | .axiomInfo v => some (.axiomDecl v)
  | .inductInfo v =>
    let types := lmap (fun n => match env.find? n with
      | some (.inductInfo w) =>
        { name := n, type := w.type,
          ctors := lmap (fun c => match env.find? c with
            | some ci => { name := c, type := ci.type : Constructor }
            | none => { name := c, type := mkSort levelZero }) w.ctors : InductiveType }
      | _ => { name := n, type := mkSort levelZero, ctors := [] }) v.all
    some (.inductDecl v.levelParams v.numParams types v.isUnsafe)
  | _ => none

/-- Environment replay (as lean4checker does): every declaration the theorem reaches
that the candidate added is re-checked by the kernel, in dependency order, on top of the
header's environment. A declaration that skipped the kernel (debug.skipKernelTC) or was
forged any other way cannot pass. -/
partial def replay (env : Environment) (kenv : Kernel.Environment) (todo : List Name) : IO Kernel.Environment := do
  match todo with
  | [] => return kenv
  | c :: rest =>
    if (kenv.find? c).isSome then return ← replay env kenv rest
    let some info := env.find? c | return ← replay env kenv rest
    -- dependencies first
    let deps := lfilter (fun d => (env.find? d).isSome && (kenv.find? d).isNone)
      (lapp info.getUsedConstantsAsSet.toList (match info with | .inductInfo v => v.all | _ => []))
    let deps := lfilter (fun d => d != c) deps
    let kenv ← match deps with | [] => pure kenv | _ => replay env kenv deps
    if (kenv.find? c).isSome then return ← replay env kenv rest
    match redeclare env info with
    | none =>
      -- constructors / recursors: their inductive adds them
      match info with
      | .ctorInfo v => replay env kenv (v.induct :: rest)
      | .recInfo v => replay env kenv (lapp v.all rest)
      | _ => throw (IO.userError s!"cannot re-check {c.toString}")
    | some decl =>
      match kenv.addDecl {} decl with
      | .ok k => replay env k rest
      | .error e => throw (IO.userError s!"{c.toString}: {← (e.toMessageData {}).toString}")

/-- The wasm build elaborates as a module (its header says `isModule`), where declarations
are private by default: `theorem foo` is `_private.0.foo` there. Either name is the
theorem's. -/
def resolve (env : Environment) (name : Name) : Name :=
  if (env.find? name).isSome then name else
  let p := mkPrivateName env name
  if (env.find? p).isSome then p else name

structure Header where
  state : Command.State
  env : Environment

def inputContext (text fileName : String) : Parser.InputContext :=
  { inputString := text, fileName := fileName, fileMap := text.toFileMap }

def elaborate (h : Header) (text : String) (fileName : String) : IO (Parser.InputContext × Frontend.State) := do
  let inputCtx := inputContext text fileName
  let cmdState := { h.state with messages := {}, infoState := { enabled := true } }
  let s ← IO.processCommands inputCtx {} cmdState
  return (inputCtx, s)

abbrev RefCache := IO.Ref (List (String × Except String Expr))

def lookup (k : String) : List (String × Except String Expr) → Option (Except String Expr)
  | [] => none
  | (k', v) :: rest => if k == k' then some v else lookup k rest

/-- The reference statement's type, elaborated on the header alone (cached per process). -/
def referenceType (h : Header) (cache : RefCache) (name : Name) (statement : String) : IO (Except String Expr) := do
  if let some r := lookup statement (← cache.get) then return r
  let (_, s) ← elaborate h (statement ++ "\n  sorry\n") "<reference>"
  let errs := lfilter (·.severity == .error) s.commandState.messages.toList
  let r ← match errs with
    | e :: _ => pure (.error (← e.data.toString))
    | [] => match s.commandState.env.find? (resolve s.commandState.env name) with
      | some info => pure (.ok info.type)
      | none => pure (.error "the statement does not declare the theorem's name")
  cache.modify ((statement, r) :: ·)
  return r

def ppType (env : Environment) (fileMap : FileMap) (e : Expr) : IO String := do
  let (fmt, _) ← (Meta.MetaM.run' (Meta.ppExpr e)).toIO { fileName := "<candidate>", fileMap := fileMap } { env := env }
  return toString fmt

def field (req : Json) (k : String) : String := (req.getObjValAs? String k).toOption.getD ""

def check (h : Header) (cache : RefCache) (req : Json) : IO Json := do
  let t0 ← IO.monoMsNow
  let source := field req "source"
  let statement := field req "statement"
  let nameStr := field req "name"
  let name := nameStr.toName
  let trustImports := (req.getObjValAs? Bool "trust_imports").toOption.getD System.Platform.isEmscripten
  let (inputCtx, s) ← elaborate h source "<candidate>"
  let msgs := s.commandState.messages.toList
  let messages ← lmapM messageJson msgs
  let holes ← collectHoles inputCtx.fileMap s.commandState.infoState.trees
  let t1 ← IO.monoMsNow
  -- The audit's facts, on the elaborated environment.
  let env := s.commandState.env
  let (tokens, options) := arrFold scanSyntax s.commands 0 ([], [])
  let runsCode := arrFold commandTaint s.commands 0 []
  let mut facts : List (String × Json) :=
    [("search_tactics", strArr tokens), ("options", strArr options), ("runs_code", strArr runsCode),
     ("axiom_walk", Json.str (if trustImports then "trusted_imports" else "full"))]
  let name := resolve env name
  match env.find? name with
  | none => facts := lapp facts [("theorem", Json.str "missing")]
  | some info =>
    let local_ := (env.getModuleIdxFor? name).isNone && (h.env.find? name).isNone
    let kind := match info with
      | .thmInfo _ => "theorem" | .defnInfo _ => "def" | .axiomInfo _ => "axiom" | _ => "other"
    let (locals, axioms) := walk env h.env trustImports [name] {} [] []
    let implementedBy := lfilter (fun n => (Compiler.getImplementedBy? env n).isSome) locals
    let externs := lfilter (fun n => isExtern env n) locals
    facts := lapp facts [("theorem", Json.str (if local_ then kind else "imported")),
      ("axioms", strArr (lmap Name.toString axioms)),
      ("implemented_by", strArr (lmap Name.toString implementedBy)),
      ("extern", strArr (lmap Name.toString externs))]
    match ← referenceType h cache name statement with
    | .error e => facts := lapp facts [("type_matches", Json.null), ("reference_error", Json.str e)]
    | .ok ref =>
      let same := info.type == ref
      facts := lapp facts [("type_matches", Json.bool same)]
      unless same do
        facts := lapp facts [("type", Json.str (← ppType env inputCtx.fileMap info.type)),
                             ("reference", Json.str (← ppType h.env inputCtx.fileMap ref))]
    unless lany (·.severity == .error) msgs || !local_ do
      try
        discard <| replay env h.env.toKernelEnv locals
        facts := lapp facts [("kernel_replay", Json.str "ok")]
      catch e =>
        facts := lapp facts [("kernel_replay", Json.str s!"failed: {e}")]
  let t2 ← IO.monoMsNow
  return Json.mkObj [("id", (req.getObjVal? "id").toOption.getD Json.null),
    ("messages", Json.arr (toArr #[] messages)), ("holes", Json.arr holes), ("facts", Json.mkObj facts),
    ("recycle", Json.bool (match runsCode with | [] => false | _ => true)), ("time_ms", Json.num (t2 - t0)), ("audit_ms", Json.num (t2 - t1))]

def loadHeader (text : String) : IO (Header × List Json) := do
  let inputCtx := inputContext text "<header>"
  let (hdr, parserState, msgs) ← Parser.parseHeader inputCtx
  let (env, msgs) ← processHeader hdr {} msgs inputCtx
  let s ← IO.processCommands inputCtx parserState (Command.mkState env msgs {})
  let errors ← lmapM messageJson (lfilter (·.severity == .error) s.commandState.messages.toList)
  return ({ state := s.commandState, env := s.commandState.env }, errors)

def reply (j : Json) : IO Unit := do
  let out ← IO.getStdout
  out.putStrLn j.compress
  out.flush

/-- The next request line: from stdin, or (with a request directory) the file `dir/n.json`,
polled every 5 ms until the driver has put it there. Why files: under the wasm build a
live pipe to stdin loses the bytes node's stdin handling takes (Lean's read(0) then gets
EAGAIN forever), while regular files are read reliably. The driver writes `n.json.tmp`
and renames it, so a file that exists is complete; it is removed once read. -/
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

partial def serve (stdin : IO.FS.Stream) (dir : Option System.FilePath) (n : Nat) (h : Header)
    (cache : RefCache) : IO Unit := do
  let line ← nextLine stdin dir n
  if line.isEmpty then return  -- end of input
  if !line.trimAscii.isEmpty then
    match Json.parse line with
    | .error e => reply <| Json.mkObj [("error", Json.str s!"bad request: {e}")]
    | .ok req =>
      try
        let answer ← check h cache req
        reply answer
        -- The candidate may have run code of its own here: end, the driver starts afresh.
        if (answer.getObjValAs? Bool "recycle").toOption.getD false then return
      catch e =>
        reply <| Json.mkObj [("id", (req.getObjVal? "id").toOption.getD Json.null),
                             ("error", Json.str (toString e)), ("recycle", Json.bool true)]
        return  -- the process's state is unknown after an exception: not reused
  serve stdin dir (n + 1) h cache

end ProofflowChecker

open ProofflowChecker in
public unsafe def main (args : List String) : IO UInt32 := do
  -- Imported modules' `initialize` declarations (tactic and attribute extensions) must run.
  enableInitializersExecution
  try initSearchPath (← findSysroot) catch _ => searchPathRef.set (← addSearchPathFromEnv {})
  -- Say so before reading anything: under the wasm build, bytes written to the pipe
  -- before this point can be lost, so the driver sends the header only after this line.
  reply <| Json.mkObj [("hello", Json.bool true)]
  let stdin ← IO.getStdin
  -- An argument names a request directory (one file per line, see `nextLine`).
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
  serve stdin dir 1 h (← IO.mkRef [])
  return 0
