;; A policy component's core module, written by hand: no Rust policy can emit
;; `table.grow` on stable Rust. tests/sandbox_bounds.rs embeds the WIT of world
;; `rule` (wit/) in it and encodes it as a component with wit-component.
;;
;; It implements the canonical ABI of palisade:policy/policy@0.2.0 (the names
;; and signatures are those of `wit_component::dummy_module` for world `rule`,
;; legacy mangling, synchronous ABI):
;;   describe        () -> ptr to metadata
;;   create          (settings ptr, len) -> ptr to result<evaluator, settings-error>
;;   evaluate        (ptr to params: rep, object ptr, object len, context...)
;;                   -> ptr to result<list<violation>, string>
;;   inactive-reason (rep) -> ptr to option<string>
;;
;; `evaluate`, on an object whose JSON text contains `"bad`, grows its function
;; table by 1,000,000,000 elements, then by 1,000,000 at a time forever: only a
;; trap stops it. On any other object it passes (ok, no violations).
;;
;; Memory layout (page 0):
;;   16..28     the return area shared by every export
;;   64..156    the metadata record returned by `describe`
;;   160..168   applies-to: one string, "*"
;;   256..1280  the strings, one every 128 bytes
;;   4096..     the heap of `cabi_realloc` (a bump allocator, reset after each call)
(module
  (type $list-objects (func (param i32 i32 i32 i32 i32 i32)))
  (import "palisade:policy/inventory@0.2.0" "list-objects" (func $list-objects (type $list-objects)))
  (import "[export]palisade:policy/policy@0.2.0" "[resource-drop]evaluator" (func $resource-drop (param i32)))
  (import "[export]palisade:policy/policy@0.2.0" "[resource-new]evaluator" (func $resource-new (param i32) (result i32)))
  (import "[export]palisade:policy/policy@0.2.0" "[resource-rep]evaluator" (func $resource-rep (param i32) (result i32)))

  (memory $memory 1)
  (table $table 1 funcref)

  (global $heap-base i32 (i32.const 4096))
  (global $heap (mut i32) (i32.const 4096))
  (global $ret i32 (i32.const 16))
  (global $metadata i32 (i32.const 64))
  (global $applies-to i32 (i32.const 160))

  (data (i32.const 256) "test-table-grow")
  (data (i32.const 384) "Grows its function table (tests only)")
  (data (i32.const 512) "Grows its function table without bound on objects whose JSON contains \"bad.")
  (data (i32.const 640) "Exercises the host's limit on table elements.")
  (data (i32.const 768) "None: this policy exists for tests.")
  (data (i32.const 896) "testing")
  (data (i32.const 1024) "*")
  (data (i32.const 1152) "{}")

  ;; Store a (ptr, len) pair at `at`: a string, or a list.
  (func $pair (param $at i32) (param $ptr i32) (param $len i32)
    (i32.store offset=0 (local.get $at) (local.get $ptr))
    (i32.store offset=4 (local.get $at) (local.get $len)))

  ;; record metadata: id 0, title 8, description 16, rationale 24, remediation 32,
  ;; severity 40 (u8), category 44, applies-to 52, reads-kinds 60,
  ;; settings-schema 68, references 76, profiles 84; 92 bytes.
  (func $describe (result i32)
    (local $m i32)
    (local.set $m (global.get $metadata))
    (call $pair (local.get $m) (i32.const 256) (i32.const 15))
    (call $pair (i32.add (local.get $m) (i32.const 8)) (i32.const 384) (i32.const 37))
    (call $pair (i32.add (local.get $m) (i32.const 16)) (i32.const 512) (i32.const 75))
    (call $pair (i32.add (local.get $m) (i32.const 24)) (i32.const 640) (i32.const 45))
    (call $pair (i32.add (local.get $m) (i32.const 32)) (i32.const 768) (i32.const 35))
    ;; severity: info
    (i32.store8 offset=40 (local.get $m) (i32.const 0))
    (call $pair (i32.add (local.get $m) (i32.const 44)) (i32.const 896) (i32.const 7))
    ;; applies-to: ["*"]
    (call $pair (global.get $applies-to) (i32.const 1024) (i32.const 1))
    (call $pair (i32.add (local.get $m) (i32.const 52)) (global.get $applies-to) (i32.const 1))
    ;; reads-kinds: []
    (call $pair (i32.add (local.get $m) (i32.const 60)) (i32.const 0) (i32.const 0))
    (call $pair (i32.add (local.get $m) (i32.const 68)) (i32.const 1152) (i32.const 2))
    ;; references: [], profiles: []
    (call $pair (i32.add (local.get $m) (i32.const 76)) (i32.const 0) (i32.const 0))
    (call $pair (i32.add (local.get $m) (i32.const 84)) (i32.const 0) (i32.const 0))
    (local.get $m))

  ;; Any settings: ok(a new evaluator, rep 1). result: tag u8 at 0, handle at 4.
  (func $create (param $settings i32) (param $len i32) (result i32)
    (i32.store8 offset=0 (global.get $ret) (i32.const 0))
    (i32.store offset=4 (global.get $ret) (call $resource-new (i32.const 1)))
    (global.get $ret))

  ;; Params (17 flat values, more than 16, so passed in memory): the evaluator's
  ;; rep at 0, the object's ptr at 4 and len at 8, the admission context from 12.
  (func $evaluate (param $args i32) (result i32)
    (local $at i32)
    (local $last i32)
    (local.set $at (i32.load offset=4 (local.get $args)))
    ;; The last position where the 4 bytes `"bad` can start.
    (local.set $last
      (i32.sub (i32.add (local.get $at) (i32.load offset=8 (local.get $args))) (i32.const 4)))
    (block $done
      (loop $scan
        (br_if $done (i32.gt_s (local.get $at) (local.get $last)))
        ;; `"bad` read as a little-endian u32: 0x22 'b' 'a' 'd'.
        (if (i32.eq (i32.load align=1 (local.get $at)) (i32.const 0x64616222))
          (then (call $grow-forever)))
        (local.set $at (i32.add (local.get $at) (i32.const 1)))
        (br $scan)))
    ;; ok([]): tag u8 at 0, list ptr at 4, len at 8.
    (i32.store8 offset=0 (global.get $ret) (i32.const 0))
    (i32.store offset=4 (global.get $ret) (i32.const 0))
    (i32.store offset=8 (global.get $ret) (i32.const 0))
    (global.get $ret))

  ;; Grow the table by a billion elements, then by a million at a time, whether
  ;; each growth succeeds or returns -1: only a trap ends this.
  (func $grow-forever
    (drop (table.grow $table (ref.null func) (i32.const 1000000000)))
    (loop $again
      (drop (table.grow $table (ref.null func) (i32.const 1000000)))
      (br $again)))

  ;; none: tag u8 at 0.
  (func $inactive-reason (param $rep i32) (result i32)
    (i32.store8 offset=0 (global.get $ret) (i32.const 0))
    (global.get $ret))

  (func $dtor (param $rep i32))

  ;; Nothing a call allocates outlives it: the heap starts over after each.
  (func $post-return (param $ret i32)
    (global.set $heap (global.get $heap-base)))

  ;; A bump allocator over the whole memory, growing it as needed.
  (func $cabi_realloc (param $old i32) (param $old-size i32) (param $align i32) (param $size i32) (result i32)
    (local $ptr i32)
    (local $end i32)
    (local.set $ptr
      (i32.and
        (i32.add (global.get $heap) (i32.sub (local.get $align) (i32.const 1)))
        (i32.sub (i32.const 0) (local.get $align))))
    (local.set $end (i32.add (local.get $ptr) (local.get $size)))
    (if (i32.gt_u (local.get $end) (i32.mul (memory.size) (i32.const 65536)))
      (then
        (if (i32.eq
              (memory.grow
                (i32.sub
                  (i32.shr_u (i32.add (local.get $end) (i32.const 65535)) (i32.const 16))
                  (memory.size)))
              (i32.const -1))
          (then unreachable))))
    (if (local.get $old)
      (then (memory.copy (local.get $ptr) (local.get $old) (local.get $old-size))))
    (global.set $heap (local.get $end))
    (local.get $ptr))

  (export "palisade:policy/policy@0.2.0#describe" (func $describe))
  (export "cabi_post_palisade:policy/policy@0.2.0#describe" (func $post-return))
  (export "palisade:policy/policy@0.2.0#[static]evaluator.create" (func $create))
  (export "cabi_post_palisade:policy/policy@0.2.0#[static]evaluator.create" (func $post-return))
  (export "palisade:policy/policy@0.2.0#[method]evaluator.evaluate" (func $evaluate))
  (export "cabi_post_palisade:policy/policy@0.2.0#[method]evaluator.evaluate" (func $post-return))
  (export "palisade:policy/policy@0.2.0#[method]evaluator.inactive-reason" (func $inactive-reason))
  (export "cabi_post_palisade:policy/policy@0.2.0#[method]evaluator.inactive-reason" (func $post-return))
  (export "palisade:policy/policy@0.2.0#[dtor]evaluator" (func $dtor))
  (export "memory" (memory $memory))
  (export "cabi_realloc" (func $cabi_realloc)))
