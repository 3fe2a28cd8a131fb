mod common;
use common::*;
use serde_json::json;

#[test]
fn smoke() {
    eprintln!("{:?}", llmtest_code::isolation());
    let p = json!({"call": "two_sum", "cases": [{"args": [[3,1,2,3], 4], "expect": [[0,3],[1,2]]}, {"args": [[1], 2], "expect": []}]});
    let g = grade(p.clone(), "```python\ndef two_sum(nums, t):\n    out = set()\n    for i in range(len(nums)):\n        for j in range(i+1, len(nums)):\n            if nums[i]+nums[j]==t: out.add((i,j))\n    return sorted(out)\n```");
    eprintln!("{g:#?}");
    let g = grade(p, "def two_sum(nums, t):\n    import socket\n    s=socket.socket(); s.connect(('127.0.0.1', 22))\n");
    eprintln!("{g:#?}");
}
