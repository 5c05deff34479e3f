//! What the `view_func` of `add_url_rule` names: a function defined in the project (locally in
//! a factory, at module level, or imported), or a class-based view through
//! `SomeView.as_view("name")`, written in place or assigned to a variable first; decorators
//! applied by hand (`login_required(view)`) are looked through.

use previewd_plugin_python::calls::positional_arguments;
use previewd_plugin_python::program::assigned_value;
use previewd_plugin_python::source::{enclosing_function, strip_parentheses};
use previewd_plugin_python::{FileId, Program, Symbol};
use tree_sitter::Node;

use crate::views::ViewClass;

/// The method turning a view class into a view function.
const AS_VIEW: &str = "as_view";
/// How many hand-applied decorators (`a(b(view))`) are looked through.
const MAX_WRAPPERS: usize = 4;

/// The view class of `SomeView.as_view("name", ...)`, directly or through a variable assigned
/// it (`view = SomeView.as_view("name")` in the same function or at module level).
pub(crate) fn view_class<'p>(
    program: &'p Program,
    file: FileId,
    expr: Node<'p>,
) -> Option<ViewClass<'p>> {
    let (file, call) = match expr.kind() {
        "call" => (file, expr),
        "identifier" => match local_value(program, file, expr) {
            Some(value) => (file, value),
            None => {
                let Symbol::Name { file, name } = program.resolve(file, expr)? else {
                    return None;
                };
                (file, assigned_value(program.definition(file, &name)?)?)
            }
        },
        _ => return None,
    };
    if !is_as_view(program, file, call) {
        return None;
    }
    let callee = call.child_by_field_name("function")?;
    ViewClass::named_by(program, file, callee.child_by_field_name("object")?)
}

/// The value assigned to the identifier `expr` in the body of a function enclosing it.
fn local_value<'p>(program: &'p Program, file: FileId, expr: Node<'p>) -> Option<Node<'p>> {
    let source = program.source(file);
    let name = source.text_of(expr);
    let mut scope = enclosing_function(expr);
    while let Some(function) = scope {
        let body = function.child_by_field_name("body")?;
        let mut cursor = body.walk();
        let statements: Vec<_> = body.named_children(&mut cursor).collect();
        let value = statements
            .into_iter()
            .filter(|s| s.kind() == "expression_statement" && s.start_byte() < expr.start_byte())
            .filter_map(|s| s.named_child(0))
            .filter(|a| {
                a.child_by_field_name("left")
                    .is_some_and(|l| l.kind() == "identifier" && source.text_of(l) == name)
            })
            .filter_map(assigned_value)
            .next_back();
        if value.is_some() {
            return value;
        }
        scope = enclosing_function(function);
    }
    None
}

/// The `def` a view function expression names: a function in an enclosing function's body
/// (factories define views locally), else a module-level or imported one.
pub(crate) fn function_named_by<'p>(
    program: &'p Program,
    file: FileId,
    expr: Node<'p>,
) -> Option<(FileId, Node<'p>)> {
    function_at(program, file, expr, 0)
}

fn function_at<'p>(
    program: &'p Program,
    file: FileId,
    expr: Node<'p>,
    depth: usize,
) -> Option<(FileId, Node<'p>)> {
    match expr.kind() {
        // `login_required(view)`: a decorator applied by hand wraps the function it is given.
        "call" if depth < MAX_WRAPPERS => {
            let arguments = expr.child_by_field_name("arguments")?;
            let first = *positional_arguments(arguments).first()?;
            function_at(program, file, strip_parentheses(first), depth + 1)
        }
        _ => program.function_named_by(file, expr),
    }
}

/// Whether `expr` is a `Something.as_view(...)` call.
pub(crate) fn is_as_view(program: &Program, file: FileId, expr: Node<'_>) -> bool {
    expr.kind() == "call"
        && expr
            .child_by_field_name("function")
            .filter(|f| f.kind() == "attribute")
            .and_then(|f| f.child_by_field_name("attribute"))
            .is_some_and(|a| program.source(file).text_of(a) == AS_VIEW)
}
